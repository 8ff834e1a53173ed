# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""flannel_config with a fake client: what is refused, written once, kept, and warned about."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.etcdfleet.cluster.plugins.module_utils import etcd_module
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdCompareFailed,
    EtcdConnectionError,
    EtcdEvent,
    EtcdKeyNotFound,
    EtcdNode,
    actual_of,
    conditions_hold,
    expected_of,
)
from ansible_collections.etcdfleet.cluster.plugins.modules import flannel_config

KEY = '/coreos.com/network/config'
VXLAN = {'Network': '10.1.0.0/16', 'Backend': {'Type': 'vxlan'}}
VXLAN_TEXT = json.dumps(VXLAN)
# The nodes' network and Docker's default bridge, as the role passes them.
AVOID = ['172.31.8.0/24', '172.17.0.0/16']


class FakeClient(object):
    """A flat in-memory key store with the client's calling conventions (directories by name)."""

    api_version = 'v2'

    def __init__(self, data=None, dirs=(), racer=None):
        self.data = dict(data or {})
        self.dirs = set(dirs)
        self.writes = []
        self.racer = racer  # a value another writer puts at the key just before our write

    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def get(self, key, recursive=False):
        if key in self.dirs:
            return EtcdNode(key, dir=True, index=3)
        if key not in self.data:
            raise EtcdKeyNotFound('key not found: %s' % key, key=key)
        return EtcdNode(key, self.data[key], index=3)

    def set(self, key, value, ttl=None, prev_value=None, prev_index=None, prev_exist=None):
        if self.racer is not None:
            self.data[key], self.racer = self.racer, None
        current = EtcdNode(key, self.data[key], index=3) if key in self.data else None
        if not conditions_hold(current, prev_value, prev_index, prev_exist):
            raise EtcdCompareFailed(key, expected_of(prev_value, prev_index, prev_exist), actual_of(current))
        self.writes.append((key, value, prev_exist))
        self.data[key] = value
        return EtcdEvent('create', key, EtcdNode(key, value, index=4), None, index=4)


def run(args, monkeypatch, capsys, client=None, error=None):
    def factory(params, **overrides):
        if error is not None:
            raise error
        return client
    monkeypatch.setattr(etcd_module, 'client_from_params', factory)
    # warnings are kept per process: each run reports only its own
    monkeypatch.setattr(ansible_warnings, '_global_warnings', type(ansible_warnings._global_warnings)())
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            flannel_config.main()
    result = json.loads(capsys.readouterr().out)
    # plain strings, or (ansible-core 2.19) {'event': {'msg': ...}}
    result['warnings'] = [w if isinstance(w, str) else w['event']['msg'] for w in result.get('warnings', [])]
    return result


@pytest.mark.parametrize('config, fragment', [
    ({'Network': '10.1.0.0/16'}, 'config has no Backend: real flanneld runs its udp backend'),
    ('{ "Network": "10.1.0.0/16" }', 'config has no Backend'),
    ({'Network': '10.1.0.0/16', 'Backend': {'Type': 'udp'}}, "backend type 'udp' is not supported"),
    ({'Network': '10.1.0.0/16', 'Backend': {'Type': 'aws-vpc'}}, "'aws-vpc'"),
    ('junk', "config: the network config is not valid JSON"),
    ('[1, 2]', 'must be a JSON object'),
    ({'Backend': {'Type': 'vxlan'}}, 'has no Network'),
    ({'Network': '10.1.0.0/33', 'Backend': {'Type': 'vxlan'}}, "Network must be an IPv4 network a.b.c.d/n, got '10.1.0.0/33'"),
    ({'Network': '10.1.0.0/16', 'SubnetLen': 31, 'Backend': {'Type': 'vxlan'}}, 'got 31'),
    ({'Network': '10.1.0.0/16', 'SubnetLen': '24', 'Backend': {'Type': 'vxlan'}}, "SubnetLen must be an integer, got '24'"),
    ({'Network': '10.1.0.0/16', 'SubnetMin': '10.2.0.0', 'Backend': {'Type': 'vxlan'}}, "SubnetMin '10.2.0.0' is not in the Network"),
    (42, 'config must be a dict or JSON text, got int 42'),
])
def test_bad_config_is_refused_and_nothing_written(config, fragment, monkeypatch, capsys):
    client = FakeClient()
    result = run({'config': config}, monkeypatch, capsys, client)
    assert result['failed'] is True and result['changed'] is False
    assert fragment in result['msg'], result['msg']
    assert 'Traceback' not in result['msg']
    assert client.writes == []


@pytest.mark.parametrize('network, avoid, fragment', [
    ('172.17.0.0/16', AVOID, 'the Network 172.17.0.0/16 overlaps 172.17.0.0/16'),
    ('172.16.0.0/12', AVOID, 'the Network 172.16.0.0/12 overlaps 172.17.0.0/16, 172.31.8.0/24 (given in avoid'),
    ('172.31.0.0/16', ['172.31.8.101', '172.31.8.0/24', '172.31.8.102', '10.0.0.0/8', '172.31.9.1', '172.31.8.103'],
     'overlaps 172.31.8.0/24, 172.31.8.101, 172.31.8.102 and 2 more (given in avoid'),
    ('172.31.8.64/26', ['172.31.8.101'], 'overlaps 172.31.8.101'),
    ('10.1.0.0/16', ['10.1.200.0/24'], 'overlaps 10.1.200.0/24'),
    ('10.0.0.0/8', ['10.1.2.3/16'], 'overlaps 10.1.2.3/16'),
])
def test_overlap_with_avoid_is_refused(network, avoid, fragment, monkeypatch, capsys):
    client = FakeClient()
    result = run({'config': {'Network': network, 'Backend': {'Type': 'vxlan'}}, 'avoid': avoid},
                 monkeypatch, capsys, client)
    assert result['failed'] is True and fragment in result['msg'], result['msg']
    assert client.writes == []


def test_bad_avoid_entry_is_named_and_ipv6_ignored(monkeypatch, capsys):
    result = run({'config': VXLAN, 'avoid': ['fd00::/64', '10.300.0.0/16']}, monkeypatch, capsys, FakeClient())
    assert result['failed'] is True and "avoid: '10.300.0.0/16' is not a network" in result['msg']
    client = FakeClient()
    result = run({'config': VXLAN, 'avoid': ['fd00::/8', '192.168.0.0/16']}, monkeypatch, capsys, client)
    assert result['changed'] is True and client.writes == [(KEY, VXLAN_TEXT, False)]


def test_too_few_subnets_for_the_hosts(monkeypatch, capsys):
    # 10.8.0.0/26 in /28s: SubnetMin 10.8.0.16 .. SubnetMax 10.8.0.48, three subnets
    tiny = {'Network': '10.8.0.0/26', 'Backend': {'Type': 'host-gw'}}
    client = FakeClient()
    result = run({'config': tiny, 'hosts': 4}, monkeypatch, capsys, client)
    assert result['failed'] is True and client.writes == []
    assert 'the Network 10.8.0.0/26 holds 3 subnet(s) of /28' in result['msg'], result['msg']
    assert 'fewer than the 4 hosts' in result['msg']
    result = run({'config': tiny, 'hosts': 3}, monkeypatch, capsys, client)
    assert result['changed'] is True and result['subnets'] == 3 and result['backend'] == 'host-gw'
    result = run({'config': VXLAN, 'hosts': -1}, monkeypatch, capsys, FakeClient())
    assert result['failed'] is True and 'hosts must be 0 or more, got -1' in result['msg']


def test_bad_prefix_is_named(monkeypatch, capsys):
    result = run({'config': VXLAN, 'prefix': 'coreos.com/network'}, monkeypatch, capsys, FakeClient())
    assert result['failed'] is True and "prefix: bad flannel prefix 'coreos.com/network'" in result['msg']


def test_written_once_then_unchanged(monkeypatch, capsys):
    client = FakeClient()
    first = run({'config': VXLAN, 'avoid': AVOID, 'hosts': 3, '_ansible_diff': True}, monkeypatch, capsys, client)
    assert first['changed'] is True and first['found'] is None
    assert first['config'] == VXLAN_TEXT and first['key'] == KEY
    assert (first['network'], first['subnet_len'], first['subnet_min'], first['subnet_max']) == (
        '10.1.0.0/16', 24, '10.1.1.0', '10.1.255.0')
    assert first['backend'] == 'vxlan' and first['subnets'] == 255
    assert first['diff'] == {'before_header': KEY, 'after_header': KEY, 'before': '', 'after': VXLAN_TEXT + '\n'}
    assert client.writes == [(KEY, VXLAN_TEXT, False)]
    second = run({'config': VXLAN, 'avoid': AVOID, 'hosts': 3}, monkeypatch, capsys, client)
    assert second['changed'] is False and second['found'] == VXLAN_TEXT and not second.get('warnings')
    assert len(client.writes) == 1


def test_json_text_is_written_as_given_under_another_prefix(monkeypatch, capsys):
    text = '{"Network": "10.5.0.0/16", "SubnetLen": 25, "Backend": {"Type": "host-gw"}}'
    client = FakeClient()
    result = run({'config': text, 'prefix': '/my/net/'}, monkeypatch, capsys, client)
    assert result['changed'] is True and result['key'] == '/my/net/config'
    assert client.data == {'/my/net/config': text}
    assert result['subnets'] == 511 and result['subnet_len'] == 25


def test_check_mode_writes_nothing(monkeypatch, capsys):
    client = FakeClient()
    result = run({'config': VXLAN, '_ansible_check_mode': True, '_ansible_diff': True}, monkeypatch, capsys, client)
    assert result['changed'] is True and result['diff']['after'] == VXLAN_TEXT + '\n'
    assert client.writes == [] and client.data == {}


def test_an_equivalent_config_found_is_kept_quietly(monkeypatch, capsys):
    stored = '{"network":"10.1.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472}}'
    client = FakeClient({KEY: stored})
    result = run({'config': VXLAN}, monkeypatch, capsys, client)
    assert result['changed'] is False and result['config'] == stored and result['found'] == stored
    assert not result.get('warnings') and client.writes == []


def test_another_config_found_is_kept_with_a_warning(monkeypatch, capsys):
    stored = '{"Network": "10.9.0.0/16", "Backend": {"Type": "host-gw"}}'
    client = FakeClient({KEY: stored})
    result = run({'config': VXLAN, '_ansible_diff': True}, monkeypatch, capsys, client)
    assert result['changed'] is False and 'diff' not in result
    assert (result['config'], result['network'], result['backend']) == (stored, '10.9.0.0/16', 'host-gw')
    assert len(result['warnings']) == 1
    assert 'holds another network configuration, which is kept' in result['warnings'][0]
    assert stored in result['warnings'][0] and VXLAN_TEXT in result['warnings'][0]
    assert client.writes == [] and client.data[KEY] == stored


def test_a_config_found_without_backend_runs_vxlan_with_a_warning(monkeypatch, capsys):
    seed = '{ "Network": "10.1.0.0/16" }'
    client = FakeClient({KEY: seed})
    result = run({'config': VXLAN}, monkeypatch, capsys, client)
    assert result['changed'] is False and result['config'] == seed
    assert result['backend'] == 'vxlan' and result['network'] == '10.1.0.0/16' and result['subnets'] == 255
    assert len(result['warnings']) == 1, result['warnings']
    assert 'has no Backend' in result['warnings'][0] and 'real flanneld would run udp' in result['warnings'][0]
    assert client.writes == []


@pytest.mark.parametrize('stored, fragment', [
    ('not json', 'is not valid JSON'),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": "udp"}}', "backend type 'udp' is not supported"),
    ('{"Network": "10.1.0.0/30", "Backend": {"Type": "vxlan"}}', 'too small'),
    ('{"Backend": {"Type": "vxlan"}}', 'has no Network'),
])
def test_an_unusable_config_found_fails_naming_the_key(stored, fragment, monkeypatch, capsys):
    client = FakeClient({KEY: stored})
    result = run({'config': VXLAN}, monkeypatch, capsys, client)
    assert result['failed'] is True and result['changed'] is False
    assert result['msg'].startswith(KEY + ' holds a network configuration the daemons cannot run'), result['msg']
    assert fragment in result['msg'] and 'not overwritten' in result['msg']
    assert client.writes == [] and client.data[KEY] == stored


def test_a_config_found_that_overlaps_or_is_too_small_fails(monkeypatch, capsys):
    client = FakeClient({KEY: '{"Network": "172.17.0.0/16", "Backend": {"Type": "vxlan"}}'})
    result = run({'config': VXLAN, 'avoid': AVOID}, monkeypatch, capsys, client)
    assert result['failed'] is True and client.writes == []
    assert KEY + ' (found there, never overwritten): the Network 172.17.0.0/16 overlaps 172.17.0.0/16' in result['msg']
    client = FakeClient({KEY: '{"Network": "10.8.0.0/26", "Backend": {"Type": "vxlan"}}'})
    result = run({'config': VXLAN, 'hosts': 5}, monkeypatch, capsys, client)
    assert result['failed'] is True and 'holds 3 subnet(s)' in result['msg'] and 'the 5 hosts' in result['msg']


def test_a_directory_at_the_key_fails(monkeypatch, capsys):
    client = FakeClient(dirs=[KEY])
    result = run({'config': VXLAN}, monkeypatch, capsys, client)
    assert result['failed'] is True and KEY + ' is a directory, not a network configuration' in result['msg']
    assert client.writes == []


def test_a_racing_writer_wins_and_its_config_is_reported(monkeypatch, capsys):
    theirs = '{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}, "SubnetLen": 24}'
    client = FakeClient(racer=theirs)
    result = run({'config': VXLAN}, monkeypatch, capsys, client)
    assert result['changed'] is False and result['found'] == theirs and result['config'] == theirs
    assert client.writes == [] and client.data[KEY] == theirs


def test_etcd_unreachable_fails_without_traceback(monkeypatch, capsys):
    class Unreachable(FakeClient):
        def get(self, key, recursive=False):
            raise EtcdConnectionError('no etcd endpoint answered: http://fake:2379 (refused)',
                                      failures=[('http://fake:2379', 'refused')])
    result = run({'config': VXLAN}, monkeypatch, capsys, Unreachable())
    assert result['failed'] is True and result['changed'] is False
    assert 'no etcd endpoint answered' in result['msg'] and result['endpoints_tried'] == ['http://fake:2379']


def test_options_are_checked_before_etcd_is_reached(monkeypatch, capsys):
    result = run({'config': {'Network': '10.1.0.0/16'}}, monkeypatch, capsys,
                 error=AssertionError('etcd must not be reached'))
    assert result['failed'] is True and 'config has no Backend' in result['msg']
