# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Health, version and leadership of each cluster member (``EtcdClient.cluster_info``)."""

from __future__ import annotations

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import EtcdError


def ask_members(members, backend_for):
    """Ask every member (a dict of ``members()``) for its health and status.

    ``backend_for(url)`` returns ``(backend, temporary)`` for a client URL, or ``(None, False)``
    when the URL is not usable; a temporary backend is closed after use. Returns the member
    dicts with ``healthy``, ``error``, ``version`` and ``is_leader`` added, the leader's id and
    the leader's name.
    """
    leader = None
    result_members = []
    for member in members:
        info = dict(member)
        info.update(healthy=False, error=None, version=None, is_leader=False)
        urls = member.get('client_urls') or []
        if not urls:
            info['error'] = 'member has no client URL yet (not started)'
            result_members.append(info)
            continue
        backend, temporary = backend_for(urls[0])
        if backend is None:
            info['error'] = 'client URL %s is not usable' % urls[0]
            result_members.append(info)
            continue
        try:
            healthy, reason = backend.health()
            status = backend.status()
            info['healthy'] = healthy
            info['error'] = reason
            info['version'] = status.get('version')
            if status.get('leader'):
                leader = status['leader']
            if not info.get('id') and status.get('member_id'):
                info['id'] = status['member_id']
        except EtcdError as exc:
            info['healthy'] = False
            info['error'] = str(exc)
        finally:
            if temporary:
                backend.close()
        result_members.append(info)
    leader_name = None
    for info in result_members:
        info['is_leader'] = leader is not None and info.get('id') == leader
        if info['is_leader']:
            leader_name = info.get('name')
    return result_members, leader, leader_name
