# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The etcd lookup and etcd_cluster_info through real ansible-playbook runs."""

from __future__ import annotations

from etcd_server import free_port
from integration_helpers import no_traceback

LOOKUP = "lookup('etcdfleet.cluster.etcd', %s, endpoints=ep, api_version=api%s)"
QUERY = "query('etcdfleet.cluster.etcd', %s, endpoints=ep, api_version=api%s)"


def fact(name, **values):
    return {'name': name, 'ansible.builtin.set_fact': values}


def test_lookup(runner, etcd_server, oracle, api, prefix):
    oracle.put(prefix + '/l/a', '1')
    oracle.put(prefix + '/l/b/c', '2')
    oracle.put(prefix + '/l/b/d', '3')
    dead = 'http://127.0.0.1:%d' % free_port()
    res = runner.run([
        fact('read',
             one='{{ %s }}' % (LOOKUP % ("prefix ~ '/l/a'", '')),
             top='{{ %s }}' % (LOOKUP % ("prefix ~ '/l'", '')),
             tree='{{ %s }}' % (LOOKUP % ("prefix ~ '/l'", ', recursive=true')),
             many='{{ %s }}' % (QUERY % ("prefix ~ '/l/a', prefix ~ '/l/zz'", ", default='dflt'")),
             down="{{ lookup('etcdfleet.cluster.etcd', prefix ~ '/l/a', endpoints=[dead], api_version=api, "
                  "default='fallback') }}"),
        dict(fact('missing', x='{{ %s }}' % (LOOKUP % ("prefix ~ '/l/zz'", ''))), ignore_errors=True),
        dict(fact('unreachable', x="{{ lookup('etcdfleet.cluster.etcd', prefix ~ '/l/a', endpoints=[dead], "
                                   "api_version=api) }}"), ignore_errors=True),
        {'name': 'env', 'ansible.builtin.set_fact': {
            'x': "{{ lookup('etcdfleet.cluster.etcd', prefix ~ '/l/a', api_version=api) }}"},
         'environment': {'ETCDCTL_ENDPOINTS': etcd_server.url}},
    ], play_vars={'ep': [etcd_server.url], 'api': api, 'prefix': prefix, 'dead': dead},
        extra_env={'ETCDCTL_ENDPOINTS': '%s,%s' % (dead, etcd_server.url)})
    assert 'ansible_facts' in res['read'], res['read'].get('msg')
    facts = res['read']['ansible_facts']
    assert facts['one'] == '1'
    assert facts['top'] == {prefix + '/l/a': '1'}
    assert facts['tree'] == {prefix + '/l/a': '1', prefix + '/l/b/c': '2', prefix + '/l/b/d': '3'}
    assert facts['many'] == ['1', 'dflt']
    assert facts['down'] == 'fallback'
    missing = res['missing']
    assert missing['failed'] is True and 'not found' in missing['msg'] and prefix + '/l/zz' in missing['msg']
    down = res['unreachable']
    assert down['failed'] is True and dead in down['msg'] and 'connection refused' in down['msg']
    # without endpoints the lookup falls back to ETCDCTL_ENDPOINTS of the controller
    assert res['env']['ansible_facts']['x'] == '1'
    for name in ('missing', 'unreachable'):
        no_traceback(res[name])


def test_cluster_info(runner, etcd_server, api):
    dead = 'http://127.0.0.1:%d' % free_port()
    res = runner.run([
        {'name': 'info', 'etcdfleet.cluster.etcd_cluster_info': {}},
        {'name': 'failover', 'etcdfleet.cluster.etcd_cluster_info': {'endpoints': [dead, etcd_server.url]}},
        {'name': 'down', 'etcdfleet.cluster.etcd_cluster_info': {'endpoints': [dead]}, 'ignore_errors': True},
    ], defaults={'endpoints': [etcd_server.url], 'api_version': api})
    info = res['info']
    assert info['changed'] is False
    assert info['healthy'] is True
    assert len(info['members']) == 1
    member = info['members'][0]
    assert member['name'] == 'it-main'
    assert member['client_urls'] == [etcd_server.url]
    assert member['peer_urls'] == [etcd_server.peer_url]
    assert member['healthy'] is True and member['is_leader'] is True and member['error'] is None
    assert info['leader'] == member['id'] and info['leader_name'] == 'it-main'
    assert info['version']['server'].startswith('3.') and member['version'] == info['version']['server']
    assert info['cluster_id']
    assert info['api_version'] == api
    assert info['endpoint'] == etcd_server.url
    assert res['failover']['endpoint'] == etcd_server.url and res['failover']['healthy'] is True
    assert res['down']['failed'] is True and dead in res['down']['msg']
    no_traceback(res['down'])


def test_lookup_options_come_from_the_environment_and_ansible_cfg(runner, etcd_server, oracle, api, prefix, tmp_path):
    oracle.put(prefix + '/o/a', 'stored')
    dead = 'http://127.0.0.1:%d' % free_port()
    config = tmp_path / 'ansible.cfg'

    def read(ini=None, env=None, direct=''):
        config.write_text('[etcdfleet_etcd]\n' + ''.join('%s = %s\n' % item for item in (ini or {}).items()))
        extra = {'ANSIBLE_CONFIG': str(config)}
        extra.update(('ETCDFLEET_' + name.upper(), value) for name, value in (env or {}).items())
        term = "{{ lookup('etcdfleet.cluster.etcd', prefix ~ '/o/a'%s, default='unread') }}" % direct
        res = runner.run([fact('read', x=term)],
                         play_vars={'prefix': prefix, 'good': [etcd_server.url], 'api': api}, extra_env=extra)
        return res['read']['ansible_facts']['x']

    good = {'endpoints': etcd_server.url, 'api_version': api}
    assert read(ini=good) == 'stored'
    assert read(env=good) == 'stored'
    # the environment wins over ansible.cfg, a keyword argument over the environment
    assert read(ini={'endpoints': dead, 'api_version': api}, env={'endpoints': etcd_server.url}) == 'stored'
    assert read(ini=good, env={'endpoints': dead}) == 'unread'
    assert read(env={'endpoints': dead, 'api_version': api}, direct=', endpoints=good') == 'stored'
    # the API version is read from there too: the key exists in one key space only
    other = 'v3' if api == 'v2' else 'v2'
    assert read(env={'endpoints': etcd_server.url, 'api_version': other}) == 'unread'
