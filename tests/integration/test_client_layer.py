# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The client layer used by the node daemons, against a real etcd, for v2 and v3."""

from __future__ import annotations

import threading
import time

import pytest

from etcd_server import EtcdCluster, free_port
from integration_helpers import start_in_thread

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    ACTION_RESYNC,
    EtcdClient,
    EtcdCompareFailed,
    EtcdConnectionError,
    EtcdEvent,
    EtcdKeyNotFound,
    EtcdLockLost,
    EtcdNotAFile,
    EtcdOp,
    EtcdWatchIndexCleared,
)


@pytest.fixture
def client(etcd_server, api):
    with EtcdClient([etcd_server.url], api_version=api, timeout=5) as value:
        yield value


def clear_history(client, oracle, etcd_server, api, prefix):
    """Make the history before now unavailable (v3 compaction, v2 more than 1000 events)."""
    if api == 'v3':
        # compaction at revision R keeps R itself: write once more, then compact
        client.set(prefix + '/filler/last', 'x')
        etcd_server.compact()
    else:
        client.set_many(dict(('%s/filler/%04d' % (prefix, i), 'x') for i in range(1010)))


def test_watch_iter_follows_every_change_including_batches(client, prefix):
    client.set(prefix + '/a', '0')
    start = client.get(prefix, recursive=True).revision + 1
    client.set_many(dict(('%s/batch/%d' % (prefix, i), str(i)) for i in range(5)))
    client.set(prefix + '/a', '1')
    client.delete(prefix + '/a')
    seen = []
    for event in client.watch_iter(prefix, recursive=True, index=start, idle_timeout=2):
        if event is None:
            break
        seen.append((event.action, event.key, event.value))
        if len(seen) == 7:
            break
    batch = [(a, k, v) for a, k, v in seen if '/batch/' in k]
    assert sorted(batch) == sorted(('create', '%s/batch/%d' % (prefix, i), str(i)) for i in range(5))
    assert seen[5:] == [('update', prefix + '/a', '1'), ('delete', prefix + '/a', None)]


def test_watch_iter_resyncs_after_history_is_gone(client, oracle, etcd_server, api, prefix):
    client.set(prefix + '/svc/one', '1')
    old = client.get(prefix + '/svc', recursive=True).revision + 1
    client.set(prefix + '/svc/two', '2')
    clear_history(client, oracle, etcd_server, api, prefix)
    with pytest.raises(EtcdWatchIndexCleared) as info:
        client.watch(prefix + '/svc', recursive=True, index=old, timeout=5)
    assert info.value.index == old
    with pytest.raises(EtcdWatchIndexCleared):
        next(client.watch_iter(prefix + '/svc', recursive=True, index=old, resync=False))
    events = client.watch_iter(prefix + '/svc', recursive=True, index=old, idle_timeout=5)
    first = next(events)
    assert first.action == ACTION_RESYNC
    assert first.node.flatten() == {prefix + '/svc/one': '1', prefix + '/svc/two': '2'}
    client.set(prefix + '/svc/three', '3')
    second = next(events)
    assert (second.action, second.key, second.value) == ('create', prefix + '/svc/three', '3')
    assert second.index > first.index


def test_watch_iter_catches_up_by_reading_again(client, api, prefix):
    client.set(prefix + '/q/first', '0')
    start = client.get(prefix + '/q', recursive=True).revision + 1
    client.set_many(dict(('%s/q/%03d' % (prefix, i), str(i)) for i in range(40)))
    events = client.watch_iter(prefix + '/q', recursive=True, index=start, idle_timeout=5, catch_up=10)
    first = next(events)
    if api == 'v2':
        # 40 changes behind: one read of the whole directory instead of 40 requests
        assert first.action == ACTION_RESYNC
        assert len(first.node.flatten()) == 41 and first.node.flatten()[prefix + '/q/039'] == '39'
    else:
        # the v3 stream sends the backlog in a few messages: every change is delivered
        assert (first.action, first.key) == ('create', prefix + '/q/000')
        assert [next(events).key for dummy in range(39)][-1] == prefix + '/q/039'
    client.set(prefix + '/q/last', 'x')
    assert next(events).key == prefix + '/q/last'


def test_watch_iter_idle_and_stop(client, prefix):
    stop = threading.Event()
    seen = []
    started = time.monotonic()
    for event in client.watch_iter(prefix + '/idle', idle_timeout=0.5, stop=stop):
        seen.append(event)
        if len(seen) == 2:
            stop.set()
    assert seen == [None, None]
    assert time.monotonic() - started < 5


def test_lock_for_leader_election(client, etcd_server, api, prefix):
    key = prefix + '/leader'
    first = client.lock(key, ttl=2, value='engine-a')
    with EtcdClient([etcd_server.url], api_version=api) as other_client:
        second = other_client.lock(key, ttl=2, value='engine-b')
        assert first.acquire() is True
        assert second.acquire() is False
        assert second.holder() == 'engine-a'
        first.refresh()
        assert first.acquire() is True, 'acquiring a lock already held is a no-op'
        # engine-a stops refreshing; engine-b gets the lock once the key expires
        started = time.monotonic()
        assert second.acquire(blocking=True, timeout=10) is True
        waited = time.monotonic() - started
        assert 0.5 < waited < 8, waited
        assert first.holder() == 'engine-b'
        with pytest.raises(EtcdLockLost):
            first.refresh()
        first.release()  # not ours any more: leaves engine-b's lock alone
        assert second.holder() == 'engine-b'
        second.release()
        assert second.holder() is None
        thread, box = start_in_thread(first.acquire, blocking=True, timeout=10)
        thread.join(15)
        assert box == [('ok', True)]
        first.release()


def test_refresh_keeps_value_and_index_history_quiet(client, prefix):
    key = prefix + '/ttl'
    client.set(key, 'v', ttl=5)
    start = client.revision(key) + 1
    node = client.refresh(key, 5)
    assert node.value == 'v' and node.ttl is not None and node.ttl >= 4
    client.set(key, 'w')
    event = client.watch(key, index=start, timeout=5)
    assert (event.value, event.prev_value) == ('w', 'v')


def test_failover_and_error_naming(etcd_server, api, prefix):
    dead = 'http://127.0.0.1:%d' % free_port()
    with EtcdClient([dead, etcd_server.url], api_version=api) as client:
        client.set(prefix + '/f', '1')
        assert client.endpoint == etcd_server.url
        assert client.get(prefix + '/f').value == '1'
    with EtcdClient([dead], api_version=api, timeout=1) as client:
        with pytest.raises(EtcdConnectionError) as info:
            client.get(prefix + '/f')
        assert info.value.endpoints == [dead]
        assert 'connection refused' in str(info.value)


def test_reads_never_show_a_past_state(api, tmp_path):
    """Reads are linearizable on both APIs: a member that comes back from a pause serves an old
    state until it catches up, and a read through it must still show every write acknowledged
    before. (The fleet engine acts on what it reads: a stale registry shows machines gone.)"""
    cluster = EtcdCluster(3, workdir=str(tmp_path / 'cluster')).start()
    try:
        urls = cluster.urls
        stale = []
        for attempt in range(4):
            # a follower lags while paused (pausing the leader would only add an election)
            first = [i for i, member in enumerate(cluster.members)
                     if member.request('GET', '/v2/stats/self')[1]['state'] != 'StateLeader'][attempt % 2]
            with EtcdClient(urls[first:] + urls[:first], api_version=api, timeout=3) as reader, \
                    EtcdClient(urls[first + 1:] + urls[:first + 1], api_version=api, timeout=3) as writer:
                member = cluster.members[first]
                member.pause()
                try:
                    time.sleep(0.7)
                    writer.set('/lin/%d' % attempt, 'acknowledged')
                finally:
                    member.cont()
                try:
                    reader.get('/lin/%d' % attempt)
                except EtcdKeyNotFound:
                    stale.append(attempt)
        assert stale == []
    finally:
        cluster.stop()


@pytest.fixture
def silent_endpoint():
    """A listening socket whose backlog is full: connections to it are neither accepted nor
    refused, like those to a member whose machine died."""
    import socket
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(0)
    port = server.getsockname()[1]
    held = []
    for dummy in range(4):
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.connect(('127.0.0.1', port))
        except BlockingIOError:
            pass
        held.append(sock)
    time.sleep(0.2)
    yield 'http://127.0.0.1:%d' % port
    for sock in held:
        sock.close()
    server.close()


def test_a_silent_member_costs_a_second_not_the_request_timeout(etcd_server, api, prefix, silent_endpoint):
    with EtcdClient([silent_endpoint, etcd_server.url], api_version=api, timeout=8) as client:
        started = time.monotonic()
        client.set(prefix + '/silent', '1')
        # connecting gives up after CONNECT_TIMEOUT (1 s), not after the 8 s of the request
        assert time.monotonic() - started < 5
        assert client.endpoint == etcd_server.url
    with EtcdClient([silent_endpoint], api_version=api, timeout=8) as client:
        started = time.monotonic()
        with pytest.raises(EtcdConnectionError) as info:
            client.get(prefix + '/silent')
        assert time.monotonic() - started < 5
        assert 'timed out' in str(info.value)


def test_connections_give_up_on_unacknowledged_requests(client, api, etcd_server, prefix):
    """TCP_USER_TIMEOUT on the connections to etcd: a request the peer's machine never
    acknowledges (it died) fails after UNACKED_TIMEOUT instead of the whole request timeout."""
    import socket
    if not hasattr(socket, 'TCP_USER_TIMEOUT'):
        pytest.skip('TCP_USER_TIMEOUT is Linux only')
    client.set(prefix + '/ack', '1')
    backend = client._backends[etcd_server.url]  # pylint: disable=protected-access
    if api == 'v2':
        pool = backend.client.http.connection_from_url(etcd_server.url)
        socks = [conn.sock for conn in list(pool.pool.queue) if conn is not None and conn.sock is not None]
    else:
        socks = [backend.transport._conn.sock]  # pylint: disable=protected-access
    assert socks
    for sock in socks:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 2000


def test_write_each_applies_each_op_on_its_own(client, prefix):
    client.set(prefix + '/taken', 'someone')
    client.set(prefix + '/mine', 'me')
    client.set(prefix + '/dir/child', 'x')
    ops = [EtcdOp.set('%s/new/%03d' % (prefix, i), str(i), prev_exist=False) for i in range(150)]
    ops += [
        EtcdOp.set(prefix + '/taken', 'me', prev_exist=False),       # create-only on an existing key
        EtcdOp.delete(prefix + '/mine', prev_value='me'),            # compare-and-delete that holds
        EtcdOp.delete(prefix + '/taken', prev_value='me'),           # ... and one that does not
        EtcdOp.delete(prefix + '/missing'),                          # plain delete of nothing
        EtcdOp.set(prefix + '/dir', 'value'),                        # a directory in the way
        EtcdOp.set(prefix + '/ttl/a', 'a', ttl=30),
        EtcdOp.set(prefix + '/ttl/b', 'b', ttl=30),
    ]
    results = client.write_each(ops)
    assert len(results) == len(ops)
    assert all(isinstance(r, EtcdEvent) and r.action == 'create' for r in results[:150])
    assert [r.key for r in results[:150]] == [op.key for op in ops[:150]]
    taken, mine, not_mine, missing, in_the_way, ttl_a, ttl_b = results[150:]
    assert isinstance(taken, EtcdCompareFailed) and taken.actual['value'] == 'someone'
    assert isinstance(mine, EtcdEvent) and mine.action == 'delete' and mine.prev_node.value == 'me'
    assert isinstance(not_mine, EtcdCompareFailed)
    assert isinstance(missing, EtcdKeyNotFound)
    assert isinstance(in_the_way, EtcdNotAFile)
    assert isinstance(ttl_a, EtcdEvent) and isinstance(ttl_b, EtcdEvent)
    stored = client.get(prefix, recursive=True)
    values = dict((n.key, n.value) for n in stored.leaves())
    assert values[prefix + '/taken'] == 'someone'
    assert prefix + '/mine' not in values
    assert [values['%s/new/%03d' % (prefix, i)] for i in range(150)] == [str(i) for i in range(150)]
    assert 0 < client.get(prefix + '/ttl/a').ttl <= 30
    assert client.write_each([]) == []


def test_write_each_create_only_has_one_winner(client, prefix):
    """Two writers racing for the same keys: every key is won exactly once."""
    keys = ['%s/race/%02d' % (prefix, i) for i in range(40)]
    outcomes = {}

    def writer(name):
        with EtcdClient(client.endpoints, api_version=client.api_version, timeout=5) as own:
            outcomes[name] = own.write_each([EtcdOp.set(k, name, prev_exist=False) for k in keys])
    threads = [threading.Thread(target=writer, args=(n,)) for n in ('one', 'two')]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for i, key in enumerate(keys):
        won = [n for n in ('one', 'two') if isinstance(outcomes[n][i], EtcdEvent)]
        lost = [n for n in ('one', 'two') if isinstance(outcomes[n][i], EtcdCompareFailed)]
        assert len(won) == 1 and len(lost) == 1, key
        assert client.get(key).value == won[0]


ODD_KEYS = ['h#frag', 'p%41ct', 'q?ttl=1', 'sp ace', 'quo"te\'s', 'back\\slash', 'w\u00e9b', 'plus+amp&eq=']


@pytest.mark.parametrize('leaf', ODD_KEYS)
def test_keys_are_written_and_read_exactly_as_given(client, oracle, prefix, leaf):
    key = '%s/acc/%s' % (prefix, leaf)
    client.set(key, 'v1')
    assert oracle.get(key) == 'v1'
    assert client.get(key).value == 'v1'
    for other in ('%s/acc/h' % prefix, '%s/acc/pAct' % prefix, '%s/acc/q' % prefix):
        assert oracle.get(other) is None
    assert key in [node.key for node in client.get('%s/acc' % prefix, recursive=True).leaves()]
    client.delete(key)
    assert oracle.get(key) is None
