# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""How the common operations map onto v3 JSON gateway requests (fake transport)."""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_http import EndpointUnavailable
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_v3 import V3Backend
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdAuthError,
    EtcdCompareFailed,
    EtcdKeyNotFound,
    EtcdNotAFile,
    EtcdServerError,
    EtcdUnsupported,
    EtcdWatchIndexCleared,
    EtcdWatchTimeout,
)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def kv(key, value, mod=5, create=4, version=1, lease=None):
    data = {'key': b64(key), 'value': b64(value), 'mod_revision': str(mod), 'create_revision': str(create),
            'version': str(version)}
    if lease:
        data['lease'] = str(lease)
    return data


def header(revision):
    return {'cluster_id': '1', 'member_id': '2', 'revision': str(revision), 'raft_term': '3'}


class FakeStream(object):
    def __init__(self, messages):
        self.lines = [json.dumps(m).encode() + b'\n' for m in messages]
        self.closed = False

    def readline(self, timeout=None):
        if not self.lines:
            raise EtcdWatchTimeout('no change within %s seconds' % timeout, timeout=timeout)
        return self.lines.pop(0)

    def close(self):
        self.closed = True


class FakeTransport(object):
    """Answers requests from a list of (path, response) pairs, in order."""

    endpoint = 'http://fake:2379'

    def __init__(self, answers, streams=None):
        self.answers = list(answers)
        self.streams = list(streams or [])
        self.calls = []

    def request_json(self, method, path, body=None, headers=None, timeout=None):
        self.calls.append((path, body, headers))
        expected_path, status, data = self.answers.pop(0)
        assert path == expected_path, (path, expected_path)
        return status, data

    def open_stream(self, method, path, body=None, headers=None, timeout=None):
        self.calls.append((path, body, headers))
        return 200, self.streams.pop(0)

    def close(self):
        pass


def backend(answers, streams=None, **kwargs):
    transport = FakeTransport(answers, streams)
    return V3Backend('http://fake:2379', 5, transport=transport, **kwargs), transport


def test_get_key_reads_exact_key_first_and_fills_ttl():
    be, tr = backend([
        ('/v3/kv/txn', 200, {'header': header(9), 'succeeded': True,
                             'responses': [{'response_range': {'kvs': [kv('/a', 'x', lease=77)], 'count': '1'}}]}),
        ('/v3/lease/timetolive', 200, {'header': header(9), 'ID': '77', 'TTL': '12', 'grantedTTL': '30'}),
    ])
    node = be.get('/a')
    assert (node.key, node.value, node.dir, node.index, node.created_index, node.ttl, node.lease, node.revision) == \
        ('/a', 'x', False, 5, 4, 12, 77, 9)
    body = tr.calls[0][1]
    assert body['compare'] == [{'key': b64('/a'), 'target': 'VERSION', 'result': 'GREATER', 'version': '0'}]
    assert body['success'] == [{'request_range': {'key': b64('/a')}}]
    assert body['failure'] == [{'request_range': {'key': b64('/a/'), 'range_end': b64('/a0')}}]
    assert tr.calls[1][1] == {'ID': '77'}


def test_get_prefix_builds_a_tree():
    kvs = [kv('/a/x', '1', mod=3), kv('/a/d/y', '2', mod=7), kv('/a/d/z/w', '3', mod=5)]
    answers = [('/v3/kv/txn', 200, {'header': header(9), 'responses': [{'response_range': {'kvs': kvs}}]})]
    be, dummy = backend(list(answers))
    node = be.get('/a', recursive=True)
    assert node.dir and node.key == '/a' and node.index == 7 and node.revision == 9
    assert node.flatten() == {'/a/x': '1', '/a/d/y': '2', '/a/d/z/w': '3'}
    sub = [c for c in node.children if c.dir][0]
    assert sub.key == '/a/d' and [c.key for c in sub.children] == ['/a/d/y', '/a/d/z']
    be, dummy = backend(list(answers))
    flat = be.get('/a')
    assert flat.flatten() == {'/a/x': '1'}
    assert [c.key for c in flat.children if c.dir] == ['/a/d']
    assert all(not c.children for c in flat.children)


def test_get_missing_key_carries_the_revision():
    be, dummy = backend([('/v3/kv/txn', 200, {'header': header(41), 'responses': [{'response_range': {}}]})])
    with pytest.raises(EtcdKeyNotFound) as info:
        be.get('/nope')
    assert info.value.revision == 41 and info.value.key == '/nope'


def test_set_with_ttl_and_cas_is_a_lease_and_a_transaction():
    be, tr = backend([
        ('/v3/lease/grant', 200, {'header': header(9), 'ID': '555', 'TTL': '30'}),
        ('/v3/kv/txn', 200, {'header': header(10), 'succeeded': True,
                             'responses': [{'response_put': {'header': {'revision': '10'},
                                                             'prev_kv': kv('/k', 'old', mod=8, create=2, version=3)}}]}),
    ])
    event = be.set('/k', 'new', ttl=30, prev_value='old', prev_index=8, prev_exist=True)
    assert tr.calls[0][1] == {'TTL': '30', 'ID': '0'}
    body = tr.calls[1][1]
    assert body['compare'] == [
        {'key': b64('/k'), 'target': 'VERSION', 'result': 'GREATER', 'version': '0'},
        {'key': b64('/k'), 'target': 'VALUE', 'result': 'EQUAL', 'value': b64('old')},
        {'key': b64('/k'), 'target': 'MOD', 'result': 'EQUAL', 'mod_revision': '8'},
        {'key': b64('/k/'), 'range_end': b64('/k0'), 'target': 'CREATE', 'result': 'EQUAL', 'create_revision': '0'},
    ]
    assert body['success'] == [{'request_put': {'key': b64('/k'), 'value': b64('new'), 'prev_kv': True,
                                                'lease': '555'}}]
    assert event.action == 'update' and event.raw_action == 'PUT'
    assert (event.node.value, event.node.index, event.node.created_index, event.node.version) == ('new', 10, 2, 4)
    assert (event.node.ttl, event.node.lease) == (30, 555)
    assert event.prev_node.value == 'old'


def test_create_only_failure_reports_both_sides_and_revokes_the_lease():
    be, tr = backend([
        ('/v3/lease/grant', 200, {'header': header(9), 'ID': '556', 'TTL': '5'}),
        ('/v3/kv/txn', 200, {'header': header(9), 'responses': [
            {'response_range': {'kvs': [kv('/lock', 'engine-a', mod=6)]}},
            {'response_range': {'count': '0'}}]}),
        ('/v3/lease/revoke', 200, {'header': header(9)}),
    ])
    with pytest.raises(EtcdCompareFailed) as info:
        be.set('/lock', 'engine-b', ttl=5, prev_exist=False)
    assert info.value.expected == {'exists': False}
    assert info.value.actual == {'exists': True, 'value': 'engine-a', 'index': 6}
    assert "actual value 'engine-a'" in str(info.value)
    assert tr.calls[2] == ('/v3/lease/revoke', {'ID': '556'}, None)


def test_set_on_a_prefix_is_not_a_file():
    be, dummy = backend([
        ('/v3/kv/txn', 200, {'header': header(9), 'responses': [
            {'response_range': {}}, {'response_range': {'count': '3'}}]}),
    ])
    with pytest.raises(EtcdNotAFile) as info:
        be.set('/dir', 'x')
    assert '3 keys below /dir/' in str(info.value)


def test_recursive_delete_removes_key_and_prefix():
    be, tr = backend([
        ('/v3/kv/txn', 200, {'header': header(12), 'responses': [
            {'response_delete_range': {'deleted': '0'}},
            {'response_delete_range': {'deleted': '2', 'prev_kvs': [kv('/d/a', '1'), kv('/d/b/c', '2')]}}]}),
    ])
    event = be.delete('/d', recursive=True)
    ops = tr.calls[0][1]['success']
    assert ops == [{'request_delete_range': {'key': b64('/d'), 'prev_kv': True}},
                   {'request_delete_range': {'key': b64('/d/'), 'range_end': b64('/d0'), 'prev_kv': True}}]
    assert event.action == 'delete' and event.index == 12
    assert event.prev_node.dir and event.prev_node.flatten() == {'/d/a': '1', '/d/b/c': '2'}


def test_compare_and_delete_failure():
    be, dummy = backend([
        ('/v3/kv/txn', 200, {'header': header(12), 'responses': [
            {'response_range': {'kvs': [kv('/k', 'real', mod=11)]}}, {'response_range': {}}]}),
    ])
    with pytest.raises(EtcdCompareFailed) as info:
        be.delete('/k', prev_value='guess')
    assert info.value.actual['value'] == 'real'


def test_refresh_keeps_the_lease_alive_when_the_ttl_matches():
    be, tr = backend([
        ('/v3/kv/txn', 200, {'header': header(9), 'succeeded': True, 'responses': [
            {'response_range': {'kvs': [kv('/k', 'v', lease=90)]}}, {'response_range': {}}]}),
        ('/v3/lease/timetolive', 200, {'ID': '90', 'TTL': '3', 'grantedTTL': '10'}),
        ('/v3/lease/keepalive', 200, {'result': {'ID': '90', 'TTL': '10'}}),
    ])
    node = be.refresh('/k', 10)
    assert node.ttl == 10 and node.value == 'v'
    assert [c[0] for c in tr.calls] == ['/v3/kv/txn', '/v3/lease/timetolive', '/v3/lease/keepalive']


def test_refresh_with_another_ttl_moves_the_key_to_a_new_lease_without_touching_the_value():
    be, tr = backend([
        ('/v3/kv/txn', 200, {'header': header(9), 'succeeded': True, 'responses': [
            {'response_range': {'kvs': [kv('/k', 'v', mod=8, lease=90)]}}, {'response_range': {}}]}),
        ('/v3/lease/timetolive', 200, {'ID': '90', 'TTL': '3', 'grantedTTL': '10'}),
        ('/v3/lease/grant', 200, {'ID': '91', 'TTL': '60'}),
        ('/v3/kv/txn', 200, {'header': header(10), 'succeeded': True, 'responses': [{'response_put': {}}]}),
    ])
    node = be.refresh('/k', 60)
    put = tr.calls[3][1]
    assert put['compare'] == [{'key': b64('/k'), 'target': 'MOD', 'result': 'EQUAL', 'mod_revision': '8'}]
    assert put['success'] == [{'request_put': {'key': b64('/k'), 'ignore_value': True, 'lease': '91'}}]
    assert (node.ttl, node.lease, node.index, node.value) == (60, 91, 10, 'v')


def test_refresh_of_a_prefix_is_unsupported():
    be, dummy = backend([
        ('/v3/kv/txn', 200, {'header': header(9), 'succeeded': True, 'responses': [
            {'response_range': {}}, {'response_range': {'count': '2'}}]}),
    ])
    with pytest.raises(EtcdUnsupported):
        be.refresh('/dir', 10)


def test_watch_maps_events_and_filters_siblings():
    stream = FakeStream([
        {'result': {'header': header(5), 'created': True}},
        {'result': {'header': header(6), 'events': [
            {'kv': kv('/ab', 'sibling', mod=6)},
            {'kv': kv('/a/x', 'new', mod=6, version=1)},
            {'type': 'DELETE', 'kv': {'key': b64('/a/y'), 'mod_revision': '6'},
             'prev_kv': kv('/a/y', 'old', mod=4)}]}},
    ])
    be, tr = backend([], [stream])
    events = be.watch('/a', recursive=True, index=6, timeout=5)
    create = tr.calls[0][1]['create_request']
    assert create == {'key': b64('/a'), 'prev_kv': True, 'range_end': b64('/a0'), 'start_revision': '6'}
    assert [(e.action, e.key, e.value, e.prev_value, e.index) for e in events] == [
        ('create', '/a/x', 'new', None, 6), ('delete', '/a/y', None, 'old', 6)]


def test_watch_after_compaction_raises_index_cleared():
    stream = FakeStream([{'result': {'header': header(50), 'canceled': True, 'compact_revision': '40'}}])
    be, dummy = backend([], [stream])
    with pytest.raises(EtcdWatchIndexCleared) as info:
        be.watch('/a', index=3, timeout=5)
    assert (info.value.index, info.value.oldest) == (3, 40)
    assert stream.closed


def test_watch_timeout():
    be, dummy = backend([], [FakeStream([{'result': {'header': header(5), 'created': True}}])])
    with pytest.raises(EtcdWatchTimeout) as info:
        be.watch('/a', timeout=0.2)
    assert 'within 0.2 seconds' in str(info.value)


@pytest.mark.parametrize('message, code, expected, fragment', [
    ('etcdserver: authentication failed, invalid user ID or password', 3, EtcdAuthError, 'wrong user name or password'),
    ('etcdserver: permission denied', 7, EtcdAuthError, 'permission denied on key /k'),
    ('etcdserver: no leader', 14, EndpointUnavailable, 'member cannot serve requests: etcdserver: no leader'),
    ('etcdserver: too many operations in txn request', 8, EtcdServerError, 'too many operations'),
])
def test_gateway_errors_are_mapped(message, code, expected, fragment):
    be, dummy = backend([('/v3/kv/txn', 400, {'error': message, 'message': message, 'code': code})])
    with pytest.raises(expected) as info:
        be.get('/k')
    assert fragment in str(info.value)
    if expected is EndpointUnavailable:
        assert info.value.sent is False


def test_authentication_token_is_sent_and_renewed():
    be, tr = backend([
        ('/v3/auth/authenticate', 200, {'header': header(1), 'token': 'tok1'}),
        ('/v3/kv/txn', 401, {'error': 'etcdserver: invalid auth token', 'code': 16}),
        ('/v3/auth/authenticate', 200, {'header': header(1), 'token': 'tok2'}),
        ('/v3/kv/txn', 200, {'header': header(3), 'succeeded': True,
                             'responses': [{'response_range': {'kvs': [kv('/k', 'v')]}}]}),
    ], username='root', password='pw')
    assert be.get('/k').value == 'v'
    assert tr.calls[0][1] == {'name': 'root', 'password': 'pw'}
    assert tr.calls[1][2] == {'Authorization': 'tok1'}
    assert tr.calls[3][2] == {'Authorization': 'tok2'}


def test_wrong_password():
    be, dummy = backend([
        ('/v3/auth/authenticate', 400, {'error': 'etcdserver: authentication failed, invalid user ID or password',
                                        'code': 3}),
    ], username='root', password='bad')
    with pytest.raises(EtcdAuthError) as info:
        be.get('/k')
    assert "user 'root'" in str(info.value) and 'bad' not in str(info.value)


def test_members_and_status_use_hex_ids():
    be, dummy = backend([
        ('/v3/cluster/member/list', 200, {'header': {'cluster_id': '255'}, 'members': [
            {'ID': '4096', 'name': 'n1', 'peerURLs': ['http://p:2380'], 'clientURLs': ['http://c:2379']}]}),
        ('/v3/maintenance/status', 200, {'header': {'member_id': '4096'}, 'version': '3.4.23', 'leader': '4096',
                                         'dbSize': '20480', 'raftIndex': '7', 'raftTerm': '2'}),
    ])
    cluster_id, members = be.members()
    assert cluster_id == 'ff' and members[0]['id'] == '1000' and members[0]['client_urls'] == ['http://c:2379']
    status = be.status()
    assert status['leader'] == '1000' and status['version'] == '3.4.23' and status['db_size'] == 20480


def test_an_endpoint_that_is_not_the_gateway_is_explained():
    be, dummy = backend([('/v3/kv/txn', 404, {'http_error': '404 page not found'})])
    with pytest.raises(EndpointUnavailable) as info:
        be.set('/k', 'v')
    assert info.value.sent is False
    assert info.value.reason == 'no etcd v3 JSON API at /v3/kv/txn (HTTP 404: 404 page not found)'
