# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""etcd_discovery_token: a token minted on the session etcd bootstraps a real new etcd."""

from __future__ import annotations

import uuid

from etcd_server import EtcdServer
from integration_helpers import Oracle, no_traceback

TOKEN = 'etcdfleet.cluster.etcd_discovery_token'


def test_discovery_token_bootstraps_a_member(runner, etcd_server, tmp_path):
    prefix = '/it/discovery-%s' % uuid.uuid4().hex[:6]
    token = 'tok-%s' % uuid.uuid4().hex[:8]
    oracle = Oracle(etcd_server, 'v2')
    defaults = {'endpoints': [etcd_server.url]}
    res = runner.run([
        dict({'name': 'check', TOKEN: {'size': 1, 'token': token, 'prefix': prefix}}, check_mode=True),
        {'name': 'mint', TOKEN: {'size': 1, 'token': token, 'prefix': prefix}},
        {'name': 'again', TOKEN: {'size': 1, 'token': token, 'prefix': prefix}},
        {'name': 'random', TOKEN: {'size': 3, 'prefix': prefix, 'url': 'http://discovery.example:2379'}},
        {'name': 'v3', TOKEN: {'size': 3, 'api_version': 'v3'}, 'ignore_errors': True},
        {'name': 'bad_token', TOKEN: {'size': 3, 'token': 'a/b'}, 'ignore_errors': True},
        {'name': 'bad_size', TOKEN: {'size': 0}, 'ignore_errors': True},
    ], defaults=defaults)
    url = '%s/v2/keys%s/%s' % (etcd_server.url, prefix, token)
    assert res['check']['changed'] is True and res['check']['discovery_url'] == url
    assert res['mint']['changed'] is True, 'check mode must not have created the token'
    assert res['mint']['discovery_url'] == url and res['mint']['size'] == 1
    assert res['again']['changed'] is False and res['again']['members'] == []
    random_token = res['random']['token']
    assert res['random']['changed'] is True and len(random_token) == 32
    assert res['random']['discovery_url'] == 'http://discovery.example:2379/v2/keys%s/%s' % (prefix, random_token)
    assert oracle.get('%s/%s/_config/size' % (prefix, random_token)) == '3'
    assert res['v3']['failed'] is True and 'api_version must be v2' in res['v3']['msg']
    assert res['bad_token']['failed'] is True and 'token' in res['bad_token']['msg']
    assert res['bad_size']['failed'] is True and 'size' in res['bad_size']['msg']
    for name in ('v3', 'bad_token', 'bad_size'):
        no_traceback(res[name])

    # a new etcd started with the URL registers itself and forms its cluster
    with EtcdServer(name='from-discovery', discovery=url, workdir=str(tmp_path / 'member')) as member:
        status, data = member.request('GET', '/v2/members')
        assert status == 200 and [m['name'] for m in data['members']] == ['from-discovery']
        res = runner.run([
            {'name': 'after', TOKEN: {'size': 1, 'token': token, 'prefix': prefix}},
            {'name': 'resize', TOKEN: {'size': 3, 'token': token, 'prefix': prefix}, 'ignore_errors': True},
            dict({'name': 'remove_check', TOKEN: {'token': token, 'prefix': prefix, 'state': 'absent'}},
                 check_mode=True),
            {'name': 'remove', TOKEN: {'token': token, 'prefix': prefix, 'state': 'absent'}},
            {'name': 'remove_again', TOKEN: {'token': token, 'prefix': prefix, 'state': 'absent'}},
        ], defaults=defaults)
        after = res['after']
        assert after['changed'] is False
        assert after['members'] == ['from-discovery=%s' % member.peer_url]
        assert res['resize']['failed'] is True and '1 registered member' in res['resize']['msg']
        # the failed resize left the size alone (read again by the next task)
        assert res['remove_check']['size'] == 1 and res['remove_check']['members'] == after['members']
        assert res['remove_check']['changed'] is True
        assert res['remove']['changed'] is True, 'check mode must not have removed the token'
        assert res['remove_again']['changed'] is False
        assert oracle.keys_below('%s/%s' % (prefix, token)) == {}
