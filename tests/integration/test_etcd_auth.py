# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""etcd_auth through real ansible-playbook runs on real etcd servers: users and roles made, each
action twice (the second changes nothing), check mode writing nothing, and the rights enforced by
etcd itself: on v2 through the common name of a client certificate, on v3 through passwords."""

from __future__ import annotations

import uuid

import pytest

from etcd_server import EtcdServer
from integration_helpers import no_traceback

AUTH = 'etcdfleet.cluster.etcd_auth'
KEY = 'etcdfleet.cluster.etcd_key'
FLEET = '/_coreos.com/fleet'
ROLES = [
    {'name': 'fleet', 'read': [FLEET, FLEET + '/*'], 'write': [FLEET + '/*']},
    {'name': 'registrator', 'read': ['/services/*'], 'write': ['/services/*']},
]
USERS = [
    {'name': 'fleet', 'password': 'fleet-pass', 'roles': ['fleet']},
    {'name': 'registrator', 'password': 'reg-pass', 'roles': ['registrator']},
]


@pytest.fixture
def tls_auth_server(tls_material, tmp_path):
    server = EtcdServer(name='it-rbac-tls', tls=tls_material, client_cert_auth=True, workdir=str(tmp_path))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def plain_server(tmp_path):
    server = EtcdServer(name='it-rbac', workdir=str(tmp_path))
    server.start()
    yield server
    server.stop()


def test_v2_roles_follow_the_certificate_common_name(runner, tls_auth_server, tls_material):
    tls = tls_material
    base = {'endpoints': [tls_auth_server.url], 'api_version': 'v2', 'ca_cert': tls.ca_cert}
    root_cert, root_key = tls.identity('root')
    reg_cert, reg_key = tls.identity('registrator')
    as_root = dict(base, client_cert=root_cert, client_key=root_key)
    as_registrator = dict(base, client_cert=reg_cert, client_key=reg_key)
    nobody = dict(base, client_cert=tls.client_cert, client_key=tls.client_key)  # CN "etcd client": no user
    auth = dict(as_root, roles=ROLES, users=USERS, root_password='r00t-pass', enabled=True)
    unit = '%s/job/x-%s.service/object' % (FLEET, uuid.uuid4().hex[:6])
    res = runner.run([
        {'name': 'check', AUTH: auth, 'check_mode': True, 'diff': True},
        {'name': 'open_after_check', KEY: dict(nobody, key='/services/open', value='1')},
        {'name': 'apply', AUTH: auth, 'diff': True},
        {'name': 'again', AUTH: auth},
        {'name': 'registrator_services', KEY: dict(as_registrator, key='/services/web/a', value='10.0.0.1:80')},
        {'name': 'registrator_fleet', KEY: dict(as_registrator, key=unit, value='{}'), 'ignore_errors': True},
        {'name': 'nobody_services', KEY: dict(nobody, key='/services/web/b', value='x'), 'ignore_errors': True},
        {'name': 'root_fleet', KEY: dict(as_root, key=unit, value='{}')},
        {'name': 'narrower', AUTH: dict(as_root, roles=[dict(ROLES[1], write=[])])},
        {'name': 'narrower_again', AUTH: dict(as_root, roles=[dict(ROLES[1], write=[])])},
        {'name': 'registrator_read_only', KEY: dict(as_registrator, key='/services/web/a', value='y'),
         'ignore_errors': True},
    ])
    check = res['check']
    assert check['changed'] is True and check['enabled'] is True
    assert check['diff']['before']['enabled'] is False and check['diff']['after']['enabled'] is True
    assert 'add_user root' in check['changes'] and 'enable' in check['changes']
    assert 'add_role guest' in check['changes'], 'anonymous requests must lose their rights before auth goes on'
    # check mode changed nothing: the cluster was still open afterwards
    assert res['open_after_check']['changed'] is True
    apply = res['apply']
    assert apply['changed'] is True and apply['changes'] == check['changes']
    assert apply['roles']['fleet'] == {'read': [FLEET, FLEET + '/*'], 'write': [FLEET + '/*']}
    assert apply['users'] == {'fleet': ['fleet'], 'registrator': ['registrator'], 'root': ['root']}
    assert apply['diff']['after'] == check['diff']['after']
    assert res['again']['changed'] is False and res['again']['changes'] == []
    for result in (check, apply, res['again']):
        for secret in ('fleet-pass', 'reg-pass', 'r00t-pass'):
            assert secret not in repr(result), 'no password may come back'
    assert res['registrator_services']['changed'] is True
    for name in ('registrator_fleet', 'nobody_services'):
        fail = res[name]
        assert fail['failed'] is True and fail['error_type'] == 'EtcdAuthError', fail
        no_traceback(fail)
    assert res['root_fleet']['changed'] is True
    assert res['narrower']['changed'] is True
    assert res['narrower']['changes'] == ['revoke_role registrator read=- write=/services/*']
    assert res['narrower_again']['changed'] is False
    assert res['registrator_read_only']['failed'] is True
    assert res['registrator_read_only']['error_type'] == 'EtcdAuthError'


def test_v3_roles_follow_the_password(runner, plain_server):
    base = {'endpoints': [plain_server.url], 'api_version': 'v3'}
    as_root = dict(base, username='root', password='r00t-pass')
    as_registrator = dict(base, username='registrator', password='reg-pass')
    auth = dict(as_root, roles=ROLES, users=USERS, root_password='r00t-pass', enabled=True)
    res = runner.run([
        {'name': 'check', AUTH: auth, 'check_mode': True},
        {'name': 'apply', AUTH: auth},
        {'name': 'again', AUTH: auth},
        {'name': 'registrator_services', KEY: dict(as_registrator, key='/services/web/a', value='10.0.0.1:80')},
        {'name': 'registrator_fleet', KEY: dict(as_registrator, key=FLEET + '/job/x/object', value='{}'),
         'ignore_errors': True},
        {'name': 'anonymous', KEY: dict(base, key='/services/web/b', value='x'), 'ignore_errors': True},
        {'name': 'wrong_role', AUTH: dict(as_root, users=[{'name': 'x', 'password': 'x-secret-1', 'roles': ['missing-role']}]),
         'ignore_errors': True},
        {'name': 'bad_pattern', AUTH: dict(as_root, roles=[{'name': 'r', 'read': ['/a b/*']}]),
         'ignore_errors': True},
        {'name': 'as_registrator', AUTH: dict(as_registrator, roles=ROLES), 'ignore_errors': True},
        {'name': 'off', AUTH: dict(as_root, enabled=False)},
        {'name': 'off_again', AUTH: dict(base, enabled=False)},
    ])
    assert res['check']['changed'] is True
    assert 'add_role root' in res['check']['changes'] and 'add_role guest' not in res['check']['changes']
    assert res['apply']['changed'] is True and res['apply']['changes'] == res['check']['changes']
    assert res['again']['changed'] is False
    assert res['registrator_services']['changed'] is True
    for name in ('registrator_fleet', 'anonymous', 'as_registrator'):
        assert res[name]['failed'] is True and res[name]['error_type'] == 'EtcdAuthError', res[name]
        no_traceback(res[name])
    assert "role(s) that do not exist: missing-role" in res['wrong_role']['msg']
    assert "permission '/a b/*' is not valid" in res['bad_pattern']['msg']
    for name in ('wrong_role', 'bad_pattern'):
        no_traceback(res[name])
    assert res['off']['changed'] is True and res['off']['enabled'] is False
    assert res['off_again']['changed'] is False
