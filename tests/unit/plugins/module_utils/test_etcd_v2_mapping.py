# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""How python-etcd results and errors map onto the common model (fake python-etcd client)."""

from __future__ import annotations

import pytest

pyetcd = pytest.importorskip('etcd')
from urllib3 import exceptions as urllib3_exceptions  # noqa: E402

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import expiration_time  # noqa: E402
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_http import EndpointUnavailable  # noqa: E402
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_v2 import (  # noqa: E402
    V2Backend,
    result_to_event,
    result_to_node,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (  # noqa: E402
    EtcdAuthError,
    EtcdCompareFailed,
    EtcdDirNotEmpty,
    EtcdKeyExists,
    EtcdKeyNotFound,
    EtcdNode,
    EtcdNotADir,
    EtcdNotAFile,
    EtcdWatchIndexCleared,
    EtcdWatchTimeout,
)


def result(action, node, prev=None, index=20):
    res = pyetcd.EtcdResult(action=action, node=node, prevNode=prev)
    res.etcd_index = index
    return res


def error(cls, code, cause, index=20, status=400):
    return cls('%s : %s' % (cls.__name__, cause), {'errorCode': code, 'cause': cause, 'index': index, 'status': status})


class FakeClient(object):
    """Stands in for etcd.Client: each method answers from a queue of results or exceptions."""

    def __init__(self, **answers):
        self.answers = dict((name, list(values)) for name, values in answers.items())
        self.calls = []

    def _answer(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))
        value = self.answers[name].pop(0)
        if isinstance(value, Exception):
            raise value
        return value

    def read(self, *args, **kwargs):
        return self._answer('read', *args, **kwargs)

    def write(self, *args, **kwargs):
        return self._answer('write', *args, **kwargs)

    def delete(self, *args, **kwargs):
        return self._answer('delete', *args, **kwargs)

    def refresh(self, *args, **kwargs):
        return self._answer('refresh', *args, **kwargs)


def backend(username=None, **answers):
    client = FakeClient(**answers)
    return V2Backend('http://fake:2379', 5, client=client, username=username,
                     password='pw' if username else None), client


def test_result_to_node_keeps_the_tree():
    res = result('get', {'key': '/a', 'dir': True, 'modifiedIndex': 3, 'createdIndex': 2, 'nodes': [
        {'key': '/a/x', 'value': '1', 'modifiedIndex': 3, 'createdIndex': 3, 'ttl': 9, 'expiration': 'e'},
        {'key': '/a/d', 'dir': True, 'modifiedIndex': 4, 'createdIndex': 4, 'nodes': [
            {'key': '/a/d/y', 'value': '2', 'modifiedIndex': 4, 'createdIndex': 4}]}]}, index=30)
    node = result_to_node(res)
    assert node.dir and node.revision == 30 and node.value is None
    assert node.flatten() == {'/a/x': '1', '/a/d/y': '2'}
    assert node.children[0].ttl == 9 and node.children[0].expiration == 'e'
    assert node.children[1].children[0].revision == 30


@pytest.mark.parametrize('text, expected', [
    ('2026-12-07T19:24:14.664123456Z', 1796671454.664123456),
    ('2026-12-07T19:24:14Z', 1796671454.0),
    ('2026-12-07T20:24:14.5+01:00', 1796671454.5),
    ('2026-12-07T18:24:14.5-01:00', 1796671454.5),
    ('e', None),
    ('', None),
    (None, None),
    (42, None),
    ('2026-13-40T19:24:14Z', None),
    ('2026-12-07T19:24:14.664Z; rm -rf /', None),
])
def test_expirations_are_read_or_refused(text, expected):
    if expected is None:
        assert expiration_time(text) is None
        assert EtcdNode('/k', expiration=text).seconds_left() is None
    else:
        assert expiration_time(text) == pytest.approx(expected, abs=1e-6)
        assert EtcdNode('/k', expiration=text).seconds_left(now=expected - 2.5) == pytest.approx(2.5, abs=1e-6)


def test_reads_go_through_the_leader():
    be, client = backend(read=[result('get', {'key': '/k', 'value': 'v', 'modifiedIndex': 3})] * 2)
    be.get('/k')
    be.get('/d', recursive=True)
    assert [call[2] for call in client.calls] == [{'recursive': False, 'quorum': True},
                                                  {'recursive': True, 'quorum': True}]


@pytest.mark.parametrize('action, prev, expected', [
    ('set', None, 'create'),
    ('set', {'key': '/k', 'value': 'o', 'modifiedIndex': 1}, 'update'),
    ('create', None, 'create'),
    ('compareAndSwap', {'key': '/k', 'value': 'o', 'modifiedIndex': 1}, 'update'),
    ('delete', {'key': '/k', 'value': 'o', 'modifiedIndex': 1}, 'delete'),
    ('compareAndDelete', {'key': '/k', 'value': 'o', 'modifiedIndex': 1}, 'delete'),
    ('expire', {'key': '/k', 'value': 'o', 'modifiedIndex': 1}, 'expire'),
])
def test_actions_are_normalised(action, prev, expected):
    event = result_to_event(result(action, {'key': '/k', 'value': 'n', 'modifiedIndex': 5}, prev))
    assert (event.action, event.raw_action, event.index) == (expected, action, 5)
    if expected in ('delete', 'expire'):
        assert event.node is None and event.prev_value == 'o'
    else:
        assert event.value == 'n'


def test_set_passes_cas_arguments():
    be, client = backend(write=[result('compareAndSwap', {'key': '/k', 'value': 'n', 'modifiedIndex': 6, 'ttl': 30},
                                       {'key': '/k', 'value': 'o', 'modifiedIndex': 5})])
    event = be.set('/k', 'n', ttl=30, prev_value='o', prev_index=5, prev_exist=True)
    assert client.calls == [('write', ('/k', 'n'), {'ttl': 30, 'prevExist': True, 'prevValue': 'o', 'prevIndex': 5})]
    assert event.action == 'update' and event.node.ttl == 30 and event.prev_value == 'o'


def test_failed_compare_rereads_the_actual_value():
    be, dummy = backend(
        write=[error(pyetcd.EtcdCompareFailed, 101, '[o != real]')],
        read=[result('get', {'key': '/k', 'value': 'real', 'modifiedIndex': 8})])
    with pytest.raises(EtcdCompareFailed) as info:
        be.set('/k', 'n', prev_value='o')
    assert info.value.expected == {'value': 'o'}
    assert info.value.actual == {'exists': True, 'value': 'real', 'index': 8}


def test_create_only_on_existing_key_is_a_failed_compare():
    be, dummy = backend(
        write=[error(pyetcd.EtcdAlreadyExist, 105, '/k', status=412)],
        read=[result('get', {'key': '/k', 'value': 'held', 'modifiedIndex': 8})])
    with pytest.raises(EtcdCompareFailed) as info:
        be.set('/k', 'n', prev_exist=False)
    assert info.value.expected == {'exists': False} and info.value.actual['value'] == 'held'


def test_update_only_on_missing_key_is_a_failed_compare():
    be, dummy = backend(
        write=[error(pyetcd.EtcdKeyNotFound, 100, '/k', status=404)],
        read=[error(pyetcd.EtcdKeyNotFound, 100, '/k', status=404)])
    with pytest.raises(EtcdCompareFailed) as info:
        be.set('/k', 'n', prev_exist=True)
    assert info.value.actual == {'exists': False}


@pytest.mark.parametrize('exc, expected, fragment', [
    (error(pyetcd.EtcdKeyNotFound, 100, '/k', index=33, status=404), EtcdKeyNotFound, 'key not found: /k'),
    (error(pyetcd.EtcdNotFile, 102, '/k', status=403), EtcdNotAFile, 'is a directory'),
    (error(pyetcd.EtcdNotDir, 104, '/k/x', status=403), EtcdNotADir, 'not a directory'),
    (error(pyetcd.EtcdDirNotEmpty, 108, '/k', status=403), EtcdDirNotEmpty, 'not empty'),
    (error(pyetcd.EtcdAlreadyExist, 105, '/k', status=412), EtcdKeyExists, 'already exists'),
])
def test_errors_are_mapped(exc, expected, fragment):
    be, dummy = backend(read=[exc])
    with pytest.raises(expected) as info:
        be.get('/k')
    assert fragment in str(info.value)
    if expected is EtcdKeyNotFound:
        assert info.value.revision == 33


def test_permission_errors_name_the_user():
    be, dummy = backend(username='alice', read=[error(pyetcd.EtcdInsufficientPermissions, 110, '', status=401)])
    with pytest.raises(EtcdAuthError) as info:
        be.get('/k')
    assert "user 'alice'" in str(info.value)
    be, dummy = backend(read=[error(pyetcd.EtcdInsufficientPermissions, 110, '', status=401)])
    with pytest.raises(EtcdAuthError) as info:
        be.get('/k')
    assert 'set username and password' in str(info.value)


def test_watch_index_cleared_tells_the_oldest_index():
    be, dummy = backend(read=[error(pyetcd.EtcdEventIndexCleared, 401,
                                    'the requested history has been cleared [110/5]', index=1109)])
    with pytest.raises(EtcdWatchIndexCleared) as info:
        be.watch('/k', index=5, timeout=1)
    assert (info.value.index, info.value.oldest, info.value.current) == (5, 110, 1109)


def test_watch_timeout_and_arguments():
    be, client = backend(read=[pyetcd.EtcdWatchTimedOut('timed out', cause=None)])
    with pytest.raises(EtcdWatchTimeout) as info:
        be.watch('/k', recursive=True, index=7, timeout=2)
    assert 'within 2 seconds' in str(info.value)
    arguments = dict(client.calls[0][2])
    timeout = arguments.pop('timeout')
    assert arguments == {'recursive': True, 'wait': True, 'waitIndex': 7}
    # the answer may take the watch's timeout, a new connection at most a second
    assert (timeout.connect_timeout, timeout.read_timeout) == (1.0, 2)
    be, client = backend(read=[pyetcd.EtcdWatchTimedOut('timed out', cause=None)])
    with pytest.raises(EtcdWatchTimeout):
        be.watch('/k')
    assert (client.calls[0][2]['timeout'].connect_timeout, client.calls[0][2]['timeout'].read_timeout) == (1.0, None)


def test_connection_failures_tell_whether_the_request_was_sent():
    refused = urllib3_exceptions.NewConnectionError(None, 'Failed to establish a new connection: [Errno 111] '
                                                          'Connection refused')
    be, dummy = backend(read=[pyetcd.EtcdConnectionFailed('failed', cause=refused)])
    with pytest.raises(EndpointUnavailable) as info:
        be.get('/k')
    assert info.value.sent is False and info.value.reason == 'connection refused'
    slow = urllib3_exceptions.ReadTimeoutError(None, '/v2/keys/k', 'Read timed out.')
    be, dummy = backend(write=[pyetcd.EtcdConnectionFailed('failed', cause=slow)])
    with pytest.raises(EndpointUnavailable) as info:
        be.set('/k', 'v')
    assert info.value.sent is True and 'no answer within 5 seconds' in info.value.reason


def test_refresh_and_mkdir_arguments():
    be, client = backend(
        refresh=[result('update', {'key': '/k', 'value': 'v', 'ttl': 20, 'modifiedIndex': 9})],
        write=[result('create', {'key': '/d', 'dir': True, 'modifiedIndex': 10})])
    node = be.refresh('/k', 20, prev_value='v')
    assert node.ttl == 20 and node.value == 'v'
    event = be.mkdir('/d', ttl=None)
    assert event.node.dir and event.action == 'create'
    assert client.calls[0] == ('refresh', ('/k', 20), {'prevValue': 'v'})
    assert client.calls[1] == ('write', ('/d', None), {'ttl': None, 'dir': True, 'prevExist': False})


def test_a_server_without_the_v2_api_is_explained():
    be, dummy = backend(read=[pyetcd.EtcdException('Bad response : 404 page not found',
                                                   {'message': 'Bad response', 'cause': '404 page not found\n'})])
    with pytest.raises(EndpointUnavailable) as info:
        be.get('/k')
    assert info.value.sent is False
    assert '404 page not found' in info.value.reason and '--enable-v2=true' in info.value.reason
