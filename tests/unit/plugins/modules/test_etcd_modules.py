# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Argument handling of the etcd modules, with a fake client (no etcd needed)."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.etcdfleet.cluster.plugins.module_utils import etcd_module
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdCompareFailed,
    EtcdEvent,
    EtcdKeyNotFound,
    EtcdMissingLibrary,
    EtcdNode,
    actual_of,
    conditions_hold,
    expected_of,
)
from ansible_collections.etcdfleet.cluster.plugins.modules import (
    etcd_discovery_token,
    etcd_key,
    etcd_key_info,
)


class FakeClient(object):
    """A flat in-memory key store with the client's calling conventions."""

    api_version = 'v2'
    endpoint = 'http://fake:2379'

    def __init__(self, data=None):
        self.data = dict(data or {})
        self.writes = []
        self.index = 10

    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def get(self, key, recursive=False):
        if key not in self.data:
            raise EtcdKeyNotFound('key not found: %s' % key, key=key, revision=self.index)
        return EtcdNode(key, self.data[key], index=self.index, revision=self.index)

    def get_many(self, keys):
        return dict((k, EtcdNode(k, self.data[k], index=self.index) if k in self.data else None) for k in keys)

    def set(self, key, value, ttl=None, prev_value=None, prev_index=None, prev_exist=None):
        current = EtcdNode(key, self.data[key], index=self.index) if key in self.data else None
        if not conditions_hold(current, prev_value, prev_index, prev_exist):
            raise EtcdCompareFailed(key, expected_of(prev_value, prev_index, prev_exist), actual_of(current))
        self.writes.append(('set', key, value, ttl))
        self.index += 1
        self.data[key] = value
        return EtcdEvent('update' if current else 'create', key, EtcdNode(key, value, index=self.index, ttl=ttl),
                         current, index=self.index)

    def set_many(self, items, ttl=None):
        return [self.set(k, v, ttl=ttl) for k, v in items.items()]

    def delete(self, key, **kwargs):
        self.writes.append(('delete', key))
        return EtcdEvent('delete', key, None, EtcdNode(key, self.data.pop(key)), index=self.index)


def run_module(module, args, monkeypatch, client=None, error=None):
    def factory(params, **overrides):
        if error is not None:
            raise error
        return client
    monkeypatch.setattr(etcd_module, 'client_from_params', factory)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()


def output(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize('args, fragment', [
    ({'key': '/k'}, 'value is required with state=present'),
    ({'key': '/k', 'value': 'v', 'ttl': 0}, 'ttl must be a positive whole number of seconds, got 0'),
    ({'key': '/k', 'value': 'v', 'ttl': -5}, 'got -5'),
    ({'key': '/k', 'value': 'v', 'ttl': 'soon'}, "argument 'ttl' is of type"),
    ({'key': '/k', 'keys': {'/a': '1'}}, 'mutually exclusive'),
    ({'value': 'v'}, 'one of the following is required: key, keys'),
    ({'key': '/k', 'refresh': True}, 'refresh is True but all of the following are missing: ttl'),
    ({'key': '/k', 'value': 'v', 'refresh': True, 'ttl': 5}, 'mutually exclusive'),
    ({'key': '/k', 'state': 'absent', 'value': 'v'}, 'value cannot be used with state=absent'),
    ({'key': '/k', 'state': 'absent', 'ttl': 4}, 'ttl cannot be used with state=absent'),
    ({'key': '/k', 'value': 'v', 'recursive': True}, 'recursive only applies to state=absent'),
    ({'key': '/k', 'dir': True, 'prev_value': 'x'}, 'apply to values, not to directories'),
    ({'keys': {'/a': '1'}, 'prev_index': 3}, 'prev_index cannot be used with keys'),
    ({'key': '/k', 'value': 'v', 'prev_index': 0}, 'prev_index must be a positive integer'),
    ({'keys': ['/a']}, 'keys must be a dict of key to value, got list'),
    ({'keys': {}}, 'keys is empty'),
    ({'keys': {'/a': {'x': 1}}}, 'the value of /a must be a string, got dict'),
    ({'keys': {'/a': None}}, 'the value of /a must be a string, got NoneType'),
    ({'key': '/k', 'value': 'v', 'api_version': 'v9'}, 'value of api_version must be one of: v2, v3'),
])
def test_etcd_key_rejects_bad_arguments(args, fragment, monkeypatch, capsys):
    client = FakeClient({'/a': 'old'})
    run_module(etcd_key, args, monkeypatch, client)
    result = output(capsys)
    assert result['failed'] is True
    assert fragment in result['msg'], result['msg']
    assert client.writes == []


def test_missing_python_etcd_is_explained(monkeypatch, capsys):
    run_module(etcd_key, {'key': '/k', 'value': 'v'}, monkeypatch,
               error=EtcdMissingLibrary('python-etcd', ImportError('No module named etcd'),
                                        reason='for the etcd v2 API'))
    result = output(capsys)
    assert result['failed'] is True
    assert 'python-etcd' in result['msg'] and 'api_version=v3' in result['msg']
    assert 'Traceback' not in result['msg']


def test_set_then_no_change_then_check_mode(monkeypatch, capsys):
    client = FakeClient()
    run_module(etcd_key, {'key': '/k', 'value': 'v', 'ttl': 30}, monkeypatch, client)
    first = output(capsys)
    assert first['changed'] is True and first['value'] == 'v' and first['prev_value'] is None and first['ttl'] == 30
    assert client.writes == [('set', '/k', 'v', 30)]
    run_module(etcd_key, {'key': '/k', 'value': 'v'}, monkeypatch, client)
    assert output(capsys)['changed'] is False
    run_module(etcd_key, {'key': '/k', 'value': 'w', '_ansible_check_mode': True, '_ansible_diff': True},
               monkeypatch, client)
    checked = output(capsys)
    assert checked['changed'] is True and checked['diff'] == {
        'before_header': '/k', 'after_header': '/k', 'before': 'v\n', 'after': 'w\n'}
    assert len(client.writes) == 1 and client.data['/k'] == 'v'


def test_failed_compare_shows_both_values(monkeypatch, capsys):
    client = FakeClient({'/k': 'blue'})
    run_module(etcd_key, {'key': '/k', 'value': 'red', 'prev_value': 'green'}, monkeypatch, client)
    result = output(capsys)
    assert result['failed'] is True and result['changed'] is False
    assert result['expected'] == {'value': 'green'} and result['actual']['value'] == 'blue'
    assert "expected value 'green'" in result['msg'] and "actual value 'blue'" in result['msg']
    assert result['error_type'] == 'EtcdCompareFailed'
    assert client.writes == []


def test_batch_writes_only_what_differs(monkeypatch, capsys):
    client = FakeClient({'/a': '1', '/b': '2'})
    run_module(etcd_key, {'keys': {'/a': 1, '/b': 'changed', '/c': 3.5}}, monkeypatch, client)
    result = output(capsys)
    assert result['changed'] is True and result['changed_keys'] == ['/b', '/c'] and result['count'] == 3
    assert sorted(w[1] for w in client.writes) == ['/b', '/c']
    assert client.data == {'/a': '1', '/b': 'changed', '/c': '3.5'}


@pytest.mark.parametrize('args, fragment', [
    ({'key': '/k', 'wait_index': 5}, 'wait_index needs wait=true'),
    ({'key': '/k', 'wait': True, 'wait_index': -1}, 'wait_index must be a positive integer'),
    ({'key': '/k', 'wait': True, 'wait_timeout': 0}, 'wait_timeout must be a positive number'),
    ({'key': ''}, 'key must not be empty'),
    ({}, 'missing required arguments: key'),
])
def test_etcd_key_info_rejects_bad_arguments(args, fragment, monkeypatch, capsys):
    run_module(etcd_key_info, args, monkeypatch, FakeClient())
    result = output(capsys)
    assert result['failed'] is True and fragment in result['msg'], result['msg']


def test_etcd_key_info_reports_missing_keys(monkeypatch, capsys):
    run_module(etcd_key_info, {'key': '/missing'}, monkeypatch, FakeClient())
    result = output(capsys)
    assert result['exists'] is False and result['changed'] is False and result['revision'] == 10


@pytest.mark.parametrize('args, fragment', [
    ({'size': 3, 'api_version': 'v3'}, 'api_version must be v2'),
    ({'size': 0}, 'size must be a positive number of members, got 0'),
    ({'size': 3, 'token': 'a/b'}, 'token may only hold letters'),
    ({'size': 3, 'prefix': '/'}, 'prefix must name a directory below the root'),
    ({'state': 'absent'}, 'state is absent but all of the following are missing: token'),
    ({}, 'state is present but all of the following are missing: size'),
])
def test_etcd_discovery_token_rejects_bad_arguments(args, fragment, monkeypatch, capsys):
    client = FakeClient()
    run_module(etcd_discovery_token, args, monkeypatch, client)
    result = output(capsys)
    assert result['failed'] is True and fragment in result['msg'], result['msg']
    assert client.writes == []
