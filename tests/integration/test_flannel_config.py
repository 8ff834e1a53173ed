# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""flannel_config through real ansible-playbook runs on the real etcd, for v2 and v3: every
action twice (the second changes nothing), a configuration found never overwritten, bad ones
refused with nothing written."""

from __future__ import annotations

import json

from integration_helpers import no_traceback

MODULE = 'etcdfleet.cluster.flannel_config'
VXLAN = {'Network': '10.1.0.0/16', 'Backend': {'Type': 'vxlan'}}
AVOID = ['172.31.8.0/24', '172.17.0.0/16']


def task(name, ignore_errors=False, **args):
    result = {'name': name, MODULE: args}
    if ignore_errors:
        result['ignore_errors'] = True
    return result


def warnings(result):
    return [w if isinstance(w, str) else w['event']['msg'] for w in result.get('warnings', [])]


def test_written_once_then_unchanged(runner, defaults, oracle, prefix):
    net = prefix + '/coreos.com/network'
    key = net + '/config'
    res = runner.run([
        dict(task('check', config=VXLAN, prefix=net, avoid=AVOID, hosts=3), check_mode=True, diff=True),
        dict(task('write', config=VXLAN, prefix=net, avoid=AVOID, hosts=3), diff=True),
        dict(task('again', config=VXLAN, prefix=net, avoid=AVOID, hosts=3), diff=True),
        dict(task('again_check', config=VXLAN, prefix=net, avoid=AVOID, hosts=3), check_mode=True),
    ], defaults=defaults)
    assert res['check']['changed'] is True and res['check']['found'] is None
    assert res['check']['diff']['before'] == '' and res['check']['diff']['after'] == json.dumps(VXLAN) + '\n'
    # check mode wrote nothing: the real run found nothing before it
    assert res['write']['changed'] is True and res['write']['found'] is None
    assert res['write']['key'] == key and res['write']['config'] == json.dumps(VXLAN)
    assert (res['write']['network'], res['write']['backend'], res['write']['subnets']) == ('10.1.0.0/16', 'vxlan', 255)
    for name in ('again', 'again_check'):
        assert res[name]['changed'] is False, res[name]
        assert res[name]['found'] == json.dumps(VXLAN) and not warnings(res[name])
    assert oracle.get(key) == json.dumps(VXLAN)
    assert json.loads(oracle.get(key)) == VXLAN


def test_a_config_found_is_kept_and_warned_about(runner, defaults, oracle, prefix):
    net = prefix + '/coreos.com/network'
    key = net + '/config'
    theirs = '{"Network": "10.9.0.0/16", "SubnetLen": 25, "Backend": {"Type": "host-gw"}}'
    oracle.put(key, theirs)
    index = oracle.index(key)
    res = runner.run([
        task('first', config=VXLAN, prefix=net),
        task('second', config=VXLAN, prefix=net),
    ], defaults=defaults)
    for name in ('first', 'second'):
        result = res[name]
        assert result['changed'] is False and result['config'] == theirs and result['found'] == theirs
        assert (result['network'], result['backend'], result['subnet_len'], result['subnets']) == (
            '10.9.0.0/16', 'host-gw', 25, 511)
        assert any('which is kept' in w and theirs in w for w in warnings(result)), result
    assert oracle.get(key) == theirs and oracle.index(key) == index


def test_the_seeds_config_without_backend_is_kept_with_a_warning(runner, defaults, oracle, prefix):
    net = prefix + '/coreos.com/network'
    key = net + '/config'
    seed = '{ "Network": "10.1.0.0/16" }'
    oracle.put(key, seed)
    res = runner.run([
        task('first', config=VXLAN, prefix=net, avoid=AVOID, hosts=3),
        task('second', config=VXLAN, prefix=net, avoid=AVOID, hosts=3),
    ], defaults=defaults)
    for name in ('first', 'second'):
        result = res[name]
        assert result['changed'] is False and result['config'] == seed and result['backend'] == 'vxlan'
        assert any('has no Backend' in w and 'real flanneld would run udp' in w for w in warnings(result)), result
    assert oracle.get(key) == seed


def test_bad_configs_are_refused_and_nothing_written(runner, defaults, oracle, prefix):
    net = prefix + '/coreos.com/network'
    res = runner.run([
        task('no_backend', True, config={'Network': '10.1.0.0/16'}, prefix=net),
        task('not_json', True, config='{"Network": 10.1.0.0/16}', prefix=net),
        task('overlaps_nodes', True, config={'Network': '172.31.0.0/16', 'Backend': {'Type': 'vxlan'}},
             prefix=net, avoid=AVOID),
        task('overlaps_docker', True, config={'Network': '172.17.0.0/16', 'Backend': {'Type': 'vxlan'}},
             prefix=net, avoid=AVOID),
        task('too_small', True, config={'Network': '10.1.0.0/28', 'Backend': {'Type': 'vxlan'}}, prefix=net, hosts=4),
        task('udp', True, config={'Network': '10.1.0.0/16', 'Backend': {'Type': 'udp'}}, prefix=net),
    ], defaults=defaults)
    expected = {
        'no_backend': 'config has no Backend',
        'not_json': 'is not valid JSON',
        'overlaps_nodes': 'the Network 172.31.0.0/16 overlaps 172.31.8.0/24',
        'overlaps_docker': 'the Network 172.17.0.0/16 overlaps 172.17.0.0/16',
        'too_small': 'holds 3 subnet(s) of /30 between SubnetMin 10.1.0.4 and SubnetMax 10.1.0.12, fewer than the 4 hosts',
        'udp': "backend type 'udp' is not supported",
    }
    for name, fragment in expected.items():
        assert res[name].get('failed') is True and res[name]['changed'] is False, (name, res[name])
        assert fragment in res[name]['msg'], res[name]['msg']
        no_traceback(res[name])
    assert oracle.keys_below(prefix) == {}


def test_an_unusable_config_found_fails_naming_the_key(runner, defaults, oracle, prefix):
    net = prefix + '/coreos.com/network'
    key = net + '/config'
    oracle.put(key, 'not json at all')
    res = runner.run([
        task('first', True, config=VXLAN, prefix=net),
        task('second', True, config=VXLAN, prefix=net),
    ], defaults=defaults)
    for name in ('first', 'second'):
        assert res[name]['failed'] is True and res[name]['changed'] is False
        assert res[name]['msg'].startswith(key + ' holds a network configuration the daemons cannot run')
        assert 'is not valid JSON' in res[name]['msg'] and 'not overwritten' in res[name]['msg']
        no_traceback(res[name])
    assert oracle.get(key) == 'not json at all'


def test_the_daemons_store_reads_what_the_module_wrote(runner, defaults, client, prefix):
    from ansible_collections.etcdfleet.cluster.plugins.module_utils.flannel_store import FlannelStore
    net = prefix + '/coreos.com/network'
    text = '{"Network": "10.5.0.0/16", "SubnetLen": 26, "Backend": {"Type": "vxlan", "VNI": 7}}'
    res = runner.run([task('write', config=text, prefix=net)], defaults=defaults)
    assert res['write']['changed'] is True
    config = FlannelStore(client, net).config()
    assert (str(config.network), config.subnet_len, config.vni, config.text) == ('10.5.0.0/16', 26, 7, text)
