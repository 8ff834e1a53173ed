# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One registrator pass planned: the wanted services against what the store holds."""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, NamedTuple

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import (
    DEFAULT_PREFIX,
    as_text,
    normalize_prefix,
    owned_keys,
)


class SyncPlan(NamedTuple):
    """What a registrator pass must do.

    put      ``{key: value}`` of every wanted service (sorted by key); write
             all of them when (re)attaching keys to a new TTL or lease
    changed  keys of ``put`` that are missing or hold another value
    delete   keys registered by this host (by id) that no running container
             wants any more: the stale keys
    conflicts messages for wanted keys claimed twice (the first one wins)
    """
    put: Dict[str, str]
    changed: List[str]
    delete: List[str]
    conflicts: List[str]


def plan_sync(services, existing, hostname, prefix=DEFAULT_PREFIX, style='plain'):
    """Compare wanted Service records with the (key, value) pairs read from
    the prefix; values are encoded in ``style`` (see encode_value).  Keys with
    ids this host cannot prove to be its own are never deleted (they expire
    by TTL)."""
    prefix = normalize_prefix(prefix)
    wanted = {}
    owner = {}
    conflicts = []
    for service in sorted(services, key=lambda s: (s.container, s.exposed_port, s.proto)):
        key = service.key(prefix)
        if key in wanted:
            conflicts.append('%s is wanted by %s port %d and by %s port %d; keeping the first'
                             % (key, owner[key][0], owner[key][1], service.container, service.exposed_port))
            continue
        wanted[key] = service.value(style)
        owner[key] = (service.container, service.exposed_port)
    current = {}
    for key, value in existing:
        if value is not None:
            current[as_text(key)] = as_text(value)
    put = OrderedDict((k, wanted[k]) for k in sorted(wanted))
    changed = [k for k in put if current.get(k) != put[k]]
    delete = [k for k in owned_keys(current, hostname, prefix) if k not in wanted]
    return SyncPlan(put, changed, delete, conflicts)
