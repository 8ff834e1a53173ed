# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""EtcdClient: argument checks, endpoint failover and watch_iter, with fake backends."""

from __future__ import annotations

import time

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_http import EndpointUnavailable
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_v3 import V3Backend
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EndpointHealth,
    EtcdClient,
    EtcdConnectionError,
    EtcdEvent,
    EtcdKeyNotFound,
    EtcdNode,
    EtcdOp,
    EtcdTLSError,
    EtcdUsageError,
    EtcdWatchIndexCleared,
    EtcdWatchTimeout,
    client_from_params,
)


class FakeBackend(object):
    def __init__(self, endpoint, behaviour):
        self.endpoint = endpoint
        self.behaviour = behaviour
        self.closed = False

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.behaviour['calls'].append((self.endpoint, name, args, kwargs))
            answer = self.behaviour[self.endpoint]
            if callable(answer):
                return answer(name, *args, **kwargs)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return call

    def close(self):
        self.closed = True


def make_client(endpoints, answers, **kwargs):
    behaviour = dict(answers, calls=[])
    client = EtcdClient(endpoints, api_version='v3', environ={},
                        backend_factory=lambda endpoint: FakeBackend(endpoint, behaviour), **kwargs)
    return client, behaviour['calls']


def test_fails_over_to_the_next_endpoint_and_sticks_to_it():
    down = EndpointUnavailable('http://a:1', 'connection refused')
    node = EtcdNode('/k', 'v')
    client, calls = make_client(['http://a:1', 'http://b:2'], {'http://a:1': down, 'http://b:2': node})
    assert client.get('/k') is node
    assert client.endpoint == 'http://b:2'
    assert client.get('/k') is node
    assert [c[0] for c in calls] == ['http://a:1', 'http://b:2', 'http://b:2']


def test_clients_sharing_health_skip_an_endpoint_another_found_down():
    now = [100.0]
    health = EndpointHealth(hold=10, clock=lambda: now[0])
    node = EtcdNode('/k', 'v')
    answers = {'http://a:1': EndpointUnavailable('http://a:1', 'no answer within 5 seconds'), 'http://b:2': node}
    first, first_calls = make_client(['http://a:1', 'http://b:2'], answers, health=health)
    second, second_calls = make_client(['http://a:1', 'http://b:2'], answers, health=health)
    alone, alone_calls = make_client(['http://a:1', 'http://b:2'], answers)
    assert first.get('/k') is node
    # the second client never waits on a: it goes to b at once; a client without the shared
    # health has to find out for itself
    assert second.get('/k') is node and alone.get('/k') is node
    assert [c[0] for c in second_calls] == ['http://b:2']
    assert [c[0] for c in alone_calls] == ['http://a:1', 'http://b:2']
    # after the hold time, a is tried again (first in the list of a new client) ...
    now[0] += 11
    third, third_calls = make_client(['http://a:1', 'http://b:2'], dict(answers, **{'http://a:1': node}), health=health)
    assert third.get('/k') is node and [c[0] for c in third_calls] == ['http://a:1']
    # ... and a success on a clears the mark at once, even within the hold time (a client with
    # nothing else to try still tries it)
    health.down('http://a:1')
    assert third.get('/k') is node and [c[0] for c in third_calls][-1] == 'http://b:2'
    assert health.is_down('http://a:1')
    only_a, dummy = make_client(['http://a:1'], {'http://a:1': node}, health=health)
    assert only_a.get('/k') is node and not health.is_down('http://a:1')
    assert health.order(['http://b:2', 'http://a:1']) == ['http://b:2', 'http://a:1']


def test_error_names_every_endpoint_tried():
    client, dummy = make_client(['http://a:1', 'http://b:2'], {
        'http://a:1': EndpointUnavailable('http://a:1', 'connection refused'),
        'http://b:2': EndpointUnavailable('http://b:2', 'cannot resolve host name'),
    })
    with pytest.raises(EtcdConnectionError) as info:
        client.get('/k')
    assert not isinstance(info.value, EtcdTLSError)
    assert str(info.value) == ('cannot reach etcd, tried 2 endpoint(s): http://a:1 (connection refused); '
                               'http://b:2 (cannot resolve host name)')
    assert info.value.endpoints == ['http://a:1', 'http://b:2']


def test_all_tls_failures_make_a_tls_error():
    client, dummy = make_client(['https://a:1'], {
        'https://a:1': EndpointUnavailable('https://a:1', 'server certificate not trusted', tls=True)})
    with pytest.raises(EtcdTLSError) as info:
        client.get('/k')
    assert 'over TLS' in str(info.value) and 'not trusted' in str(info.value)


def test_a_write_that_may_have_been_applied_is_not_repeated_elsewhere():
    client, calls = make_client(['http://a:1', 'http://b:2'], {
        'http://a:1': EndpointUnavailable('http://a:1', 'no answer within 5 seconds', sent=True),
        'http://b:2': EtcdEvent('create', '/k')})
    with pytest.raises(EtcdConnectionError) as info:
        client.set('/k', 'v')
    assert 'may or may not have been applied' in str(info.value)
    assert [c[0] for c in calls] == ['http://a:1']
    # a read may go on to the next endpoint
    client, calls = make_client(['http://a:1', 'http://b:2'], {
        'http://a:1': EndpointUnavailable('http://a:1', 'no answer within 5 seconds', sent=True),
        'http://b:2': EtcdNode('/k', 'v')})
    assert client.get('/k').value == 'v'


def test_key_errors_are_not_failed_over():
    client, calls = make_client(['http://a:1', 'http://b:2'], {
        'http://a:1': EtcdKeyNotFound('key not found: /k', key='/k'), 'http://b:2': EtcdNode('/k', 'v')})
    with pytest.raises(EtcdKeyNotFound):
        client.get('/k')
    assert len(calls) == 1


@pytest.mark.parametrize('kwargs, fragment', [
    ({'api_version': 'v4'}, 'api_version must be one of v2, v3'),
    ({'timeout': 0}, 'timeout must be a positive number'),
    ({'timeout': 'x'}, 'timeout must be a positive number'),
    ({'password': 'p'}, 'password is set but username is not'),
    ({'username': 'u'}, 'username is set but password is not'),
    ({'client_key': '/etc/hostname'}, 'client_key is set but client_cert is not'),
    ({'ca_cert': '/nonexistent/ca.pem'}, 'ca_cert file /nonexistent/ca.pem does not exist'),
])
def test_bad_connection_options(kwargs, fragment):
    with pytest.raises(EtcdUsageError if 'ca_cert' not in kwargs else EtcdTLSError) as info:
        EtcdClient(['http://a:1'], backend_factory=lambda e: None, **kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize('call, fragment', [
    (lambda c: c.set('/k', 'v', ttl=0), 'ttl must be a positive whole number of seconds, got 0'),
    (lambda c: c.set('/k', {'a': 1}), 'value must be a string'),
    (lambda c: c.set('', 'v'), 'key must be a non-empty string'),
    (lambda c: c.set('/k', 'v', prev_exist='yes'), 'prev_exist must be true or false'),
    (lambda c: c.refresh('/k', None), 'refresh needs a ttl'),
    (lambda c: c.watch('/k', timeout=-1), 'watch timeout must be a positive number'),
    (lambda c: c.set_many({'/k': None}), 'value of /k must be a string'),
])
def test_bad_operation_arguments(call, fragment):
    client, calls = make_client(['http://a:1'], {'http://a:1': None})
    with pytest.raises(EtcdUsageError) as info:
        call(client)
    assert fragment in str(info.value)
    assert calls == []


def test_client_from_params_uses_only_set_options():
    client = client_from_params({'endpoints': None, 'api_version': 'v3', 'timeout': 2.5, 'key': '/x'},
                                environ={'ETCDCTL_ENDPOINTS': 'http://env:1'})
    assert client.endpoints == ['http://env:1'] and client.api_version == 'v3' and client.timeout == 2.5


def event(key, index, action='update', value='v'):
    return EtcdEvent(action, key, EtcdNode(key, value, index=index), None, index=index)


def test_watch_iter_resumes_after_the_last_event_and_resyncs():
    script = [
        [event('/s/a', 11), event('/s/b', 11)],
        EtcdWatchTimeout('idle'),
        EtcdWatchIndexCleared('cleared', index=12, oldest=20),
        [event('/s/c', 31)],
    ]
    seen_indexes = []

    def answer(name, *args, **kwargs):
        if name == 'get':
            return EtcdNode('/s', dir=True, revision=30, children=[EtcdNode('/s/a', 'v', index=11)])
        assert name == 'watch'
        seen_indexes.append(kwargs['index'])
        step = script.pop(0)
        if isinstance(step, EtcdWatchTimeout):
            time.sleep(0.01)  # longer than idle_timeout
        if isinstance(step, Exception):
            raise step
        return step

    client, dummy = make_client(['http://a:1'], {'http://a:1': answer})
    events = client.watch_iter('/s', recursive=True, index=10, idle_timeout=0.001)
    got = [next(events) for dummy in range(5)]
    assert [(e.action, e.key) if e is not None else None for e in got] == [
        ('update', '/s/a'), ('update', '/s/b'), None, ('resync', '/s'), ('update', '/s/c')]
    assert got[3].node.flatten() == {'/s/a': 'v'} and got[3].index == 30
    # 10, then after the two events of index 11, then again after the idle timeout, then after the resync
    assert seen_indexes == [10, 12, 12, 31]


def test_watch_iter_without_index_starts_at_the_current_revision():
    indexes = []

    def answer(name, *args, **kwargs):
        if name == 'revision':
            return 41
        indexes.append(kwargs['index'])
        return [event('/k', 42)]

    client, dummy = make_client(['http://a:1'], {'http://a:1': answer})
    assert next(client.watch_iter('/k')).index == 42
    assert indexes == [42]


def test_watch_iter_reconnects_when_asked():
    attempts = []

    def answer(name, *args, **kwargs):
        attempts.append(kwargs.get('index'))
        if len(attempts) == 1:
            raise EndpointUnavailable('http://a:1', 'stream closed by the server', sent=True)
        return [event('/k', 8)]

    client, dummy = make_client(['http://a:1'], {'http://a:1': answer})
    assert next(client.watch_iter('/k', index=5, reconnect_delay=0.01)).index == 8
    assert attempts == [5, 5]
    client, dummy = make_client(['http://a:1'], {
        'http://a:1': EndpointUnavailable('http://a:1', 'refused')})
    with pytest.raises(EtcdConnectionError):
        next(client.watch_iter('/k', index=5))


def test_write_each_checks_its_ops_and_sends_them_in_one_call():
    client, calls = make_client(['http://a:1'], {'http://a:1': lambda name, ops: ['done'] * len(ops)})
    assert client.write_each([]) == []
    with pytest.raises(EtcdUsageError, match='EtcdOp'):
        client.write_each([('/k', 'v')])
    with pytest.raises(EtcdUsageError, match='ttl'):
        client.write_each([EtcdOp.set('/k', 'v', ttl=-1)])
    with pytest.raises(EtcdUsageError, match='prev_exist'):
        client.write_each([EtcdOp.set('/k', 'v', prev_exist='no')])
    assert calls == []
    ops = [EtcdOp.set('/a', 1), EtcdOp.delete('/b', prev_value='x')]
    assert client.write_each(ops) == ['done', 'done']
    assert [(c[1], len(c[2][0])) for c in calls] == [('write_each', 2)]
    assert ops[0].value == '1'


def test_a_watch_that_moves_to_another_member_closes_the_stream_it_left():
    health = EndpointHealth(hold=10)
    event = EtcdEvent('set', '/k', EtcdNode('/k', 'v', index=5), None, index=5)
    client, calls = make_client(['http://a:1', 'http://b:2'], {'http://a:1': [event], 'http://b:2': [event]},
                                health=health)
    client.watch('/k', index=5)
    client.watch('/k', index=6)
    assert [(c[0], c[1]) for c in calls] == [('http://a:1', 'watch'), ('http://a:1', 'watch')]
    # another client of the process found a down; a still answers, but the watch moves to b
    health.down('http://a:1')
    client.watch('/k', index=6)
    assert [(c[0], c[1]) for c in calls][2:] == [('http://a:1', 'close_watch'), ('http://b:2', 'watch')]
    client.watch('/k', index=7)
    assert [(c[0], c[1]) for c in calls][4:] == [('http://b:2', 'watch')]


def test_write_each_is_not_resent_elsewhere_once_sent():
    sent = EndpointUnavailable('http://a:1', 'no answer within 5 seconds', sent=True)
    client, calls = make_client(['http://a:1', 'http://b:2'], {'http://a:1': sent, 'http://b:2': ['done']})
    with pytest.raises(EtcdConnectionError, match='may or may not have been applied'):
        client.write_each([EtcdOp.set('/a', '1')])
    assert [c[0] for c in calls] == ['http://a:1']


def test_a_client_of_its_own_tries_a_member_that_failed_last_next_time():
    # a write that may have reached a member is not resent; the next request starts elsewhere
    sent = EndpointUnavailable('http://a:1', 'no answer within 5 seconds', sent=True)
    client, calls = make_client(['http://a:1', 'http://b:2'], {'http://a:1': sent, 'http://b:2': ['done']})
    with pytest.raises(EtcdConnectionError, match='may or may not have been applied'):
        client.write_each([EtcdOp.set('/a', '1')])
    assert client.write_each([EtcdOp.set('/a', '1')]) == ['done']
    assert [c[0] for c in calls] == ['http://a:1', 'http://b:2']
    assert client.endpoint == 'http://b:2'


def test_v3_transactions_respect_etcd_limits():
    ops = [EtcdOp.set('/k/%d' % i, 'v', prev_exist=False) for i in range(100)]
    ops += [EtcdOp.set('/k/0', 'again'), EtcdOp.delete('/x', prev_value='a', prev_index=3)]
    chunks = list(V3Backend._op_chunks(ops, range(len(ops))))
    assert [i for chunk in chunks for i in chunk] == list(range(len(ops)))
    for chunk in chunks:
        keys = [ops[i].key for i in chunk]
        assert len(chunk) <= 64 and len(set(keys)) == len(keys)
    # '/k/0' appears twice: never in the same transaction
    assert not any(0 in chunk and 100 in chunk for chunk in chunks)


def test_watch_iter_catch_up_reads_again_when_far_behind():
    behind = event('/s/a', 11)
    behind.revision = 200   # the store is 189 changes ahead of this one
    near = event('/s/b', 202)
    near.revision = 205
    script = [[behind], [near]]
    seen_indexes = []

    def answer(name, *args, **kwargs):
        if name == 'get':
            return EtcdNode('/s', dir=True, revision=201, children=[EtcdNode('/s/a', 'v', index=11)])
        seen_indexes.append(kwargs['index'])
        return script.pop(0)

    client, dummy = make_client(['http://a:1'], {'http://a:1': answer})
    events = client.watch_iter('/s', recursive=True, index=10, catch_up=64)
    got = [next(events) for dummy in range(2)]
    assert [(e.action, e.key, e.index) for e in got] == [('resync', '/s', 201), ('update', '/s/b', 202)]
    # the backlog after index 11 is skipped: the next watch starts after the read
    assert seen_indexes == [10, 202]


def test_watch_iter_without_catch_up_replays_every_change():
    behind = event('/s/a', 11)
    behind.revision = 200
    client, dummy = make_client(['http://a:1'], {'http://a:1': lambda name, *a, **k: [behind]})
    first = next(client.watch_iter('/s', recursive=True, index=10))
    assert (first.action, first.key) == ('update', '/s/a')
