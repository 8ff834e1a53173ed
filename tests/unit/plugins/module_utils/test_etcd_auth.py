# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""plan_access (the changes between two states) and the v3 permission encoding, without a server;
tests/integration/test_etcd_auth.py runs them against real etcd servers."""

from __future__ import annotations

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_auth import (
    AccessState,
    V3Access,
    _v3_pattern,
    _v3_perm,
    plan_access,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import EtcdUsageError


def test_nothing_to_do_when_the_state_holds():
    state = AccessState(True, {'root': ['root'], 'fleet': ['fleet']},
                        {'fleet': {'read': ['/f/*'], 'write': ['/f/*']}, 'guest': {}})
    assert plan_access(state, {'fleet': {'read': ['/f/*'], 'write': ['/f/*']}},
                       {'fleet': {'password': 'x', 'roles': ['fleet']}}, enabled=True) == []


def test_permissions_are_made_exact_and_users_get_exactly_their_roles():
    state = AccessState(False, {'svc': ['old', 'keep']},
                        {'svc': {'read': ['/a/*', '/b/*'], 'write': ['/a/*']}, 'old': {}, 'keep': {}})
    changes = plan_access(state, {'svc': {'read': ['/a/*', '/c'], 'write': []}},
                          {'svc': {'roles': ['keep', 'svc']}})
    assert changes == [
        ('grant_role', 'svc', ['/c'], []),
        ('revoke_role', 'svc', ['/b/*'], ['/a/*']),
        ('grant_user', 'svc', ['svc']),
        ('revoke_user', 'svc', ['old']),
    ]


def test_turning_auth_on_v2_empties_guest_and_makes_root_first():
    changes = plan_access(AccessState(), {}, {}, enabled=True, root_password='pw', api_version='v2')
    assert changes == [('add_role', 'guest'), ('add_user', 'root', 'pw'), ('enable',)]


def test_turning_auth_on_v3_makes_the_root_role():
    state = AccessState(has_root_role=False)
    changes = plan_access(state, {}, {}, enabled=True, root_password='pw', api_version='v3')
    assert changes == [('add_role', 'root'), ('add_user', 'root', 'pw'), ('grant_user', 'root', ['root']),
                       ('enable',)]


@pytest.mark.parametrize('roles, users, kwargs, message', [
    ({}, {}, {'enabled': True}, 'give root_password'),
    ({'root': {}}, {}, {}, 'root role'),
    ({'bad name': {}}, {}, {}, "role name 'bad name' is not valid"),
    ({'r': {'read': ['relative/*']}}, {}, {}, "permission 'relative/*' is not valid"),
    ({'r': {'read': ['/a*b']}}, {}, {}, "permission '/a*b' is not valid"),
    ({'r': {'write': ['/a/\n']}}, {}, {}, 'is not valid'),
    ({}, {'u': {'password': 'x', 'roles': ['ghost']}}, {}, 'do not exist: ghost'),
    ({}, {'u': {'roles': []}}, {}, 'give its password'),
    ({}, {'root': {'password': 'x', 'roles': []}}, {}, 'must keep the root role'),
])
def test_refused(roles, users, kwargs, message):
    with pytest.raises(EtcdUsageError, match=message.replace('*', r'\*').replace('(', r'\(')):
        plan_access(AccessState(), roles, users, **kwargs)


def test_always_sets_the_password_again():
    state = AccessState(False, {'u': []}, {})
    assert plan_access(state, {}, {'u': {'password': 'x', 'roles': []}}, update_password='always') == [
        ('set_password', 'u', 'x')]


def test_v3_patterns_round_trip():
    for pattern in ('/services/*', '/_coreos.com/fleet', '/x\u00e9/*'):
        key, range_end = _v3_perm(pattern)
        perm = {'key': key}
        if range_end:
            perm['range_end'] = range_end
        assert _v3_pattern(perm) == pattern


class FakeGateway(object):
    def __init__(self, perms):
        self.perms = perms
        self.posted = []

    def _post(self, path, body):
        self.posted.append((path, body))
        if path == '/auth/role/list':
            return {'roles': ['svc']}
        if path == '/auth/role/get':
            return {'perm': self.perms}
        return {}


def test_v3_revoking_one_kind_keeps_the_other():
    key, range_end = _v3_perm('/a/*')
    gateway = FakeGateway([{'permType': 'READWRITE', 'key': key, 'range_end': range_end}])
    access = V3Access(gateway)
    access.revoke_role('svc', [], ['/a/*'])
    writes = [(path, body) for path, body in gateway.posted if path in ('/auth/role/revoke', '/auth/role/grant')]
    assert writes == [
        ('/auth/role/revoke', {'role': 'svc', 'key': key, 'range_end': range_end}),
        ('/auth/role/grant', {'name': 'svc', 'perm': {'permType': 'READ', 'key': key, 'range_end': range_end}}),
    ]
