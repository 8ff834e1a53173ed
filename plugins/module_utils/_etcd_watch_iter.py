# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Following the changes of a key or prefix for ever (``EtcdClient.watch_iter``)."""

from __future__ import annotations

import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (
    ACTION_RESYNC,
    EtcdConnectionError,
    EtcdEvent,
    EtcdKeyNotFound,
    EtcdWatchIndexCleared,
    EtcdWatchTimeout,
    validate_index,
    validate_key,
)


def follow_changes(client, key, recursive=False, index=None, idle_timeout=None, resync=True,
                   stop=None, reconnect_delay=None, catch_up=None):
    """Yield every change of ``key`` through ``client`` (an EtcdClient); the options are
    described at ``EtcdClient.watch_iter``."""
    validate_key(key)
    next_index = validate_index(index, 'index')
    poll = idle_timeout
    if stop is not None:
        poll = min(idle_timeout, 1.0) if idle_timeout else 1.0
    idle_since = time.monotonic()
    while stop is None or not stop.is_set():
        try:
            if next_index is None:
                next_index = client.revision(key) + 1
            events = client.watch_events(key, recursive, next_index, poll)
        except EtcdWatchTimeout:
            if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                idle_since = time.monotonic()
                yield None
            continue
        except EtcdWatchIndexCleared:
            if not resync:
                raise
            events = None
        except EtcdConnectionError:
            if reconnect_delay is None:
                raise
            if stop is not None:
                stop.wait(reconnect_delay)
            else:
                time.sleep(reconnect_delay)
            continue
        if events is None or (catch_up is not None and events and events[-1].revision is not None
                              and events[-1].revision - events[-1].index > catch_up):
            try:
                node = client.get(key, recursive=recursive)
                revision = node.revision
            except EtcdKeyNotFound as exc:
                node = None
                revision = exc.revision if exc.revision is not None else client.revision('/')
            next_index = revision + 1
            idle_since = time.monotonic()
            yield EtcdEvent(ACTION_RESYNC, key, node, None, index=revision, raw_action='resync')
            continue
        for event in events:
            next_index = event.index + 1
            idle_since = time.monotonic()
            yield event
            if stop is not None and stop.is_set():
                return
