# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""EtcdKeyKeeper: keys kept alive together, renewed without waking watchers (v2 and v3 semantics)."""

from __future__ import annotations

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdConnectionError,
    EtcdUsageError,
)
from registrator_fakes import FakeStore


@pytest.fixture(params=['v2', 'v3'])
def store(request):
    return FakeStore(request.param)


def test_needs_a_ttl(store):
    with pytest.raises(EtcdUsageError, match='a lease needs a ttl'):
        store.client().key_keeper(None)


def test_put_keepalive_expiry(store):
    lease = store.client().key_keeper(10)
    lease.put('/s/a/h:c:80', '10.0.0.1:1')
    lease.put('/s/b/h:c:81', '10.0.0.1:2')
    assert store.values() == {'/s/a/h:c:80': '10.0.0.1:1', '/s/b/h:c:81': '10.0.0.1:2'}
    assert lease.keys == store.values() and len(lease) == 2 and '/s/a/h:c:80' in lease
    writes = len(store.writes())
    for dummy in range(5):
        store.advance(6)
        assert lease.keepalive() == []
    # 30 s later the keys still live, and no watcher saw anything since they were written
    assert sorted(store.values()) == ['/s/a/h:c:80', '/s/b/h:c:81']
    assert len(store.writes()) == writes
    # the owner stops renewing: gone within the TTL
    store.advance(10)
    assert store.values() == {}
    assert sorted(e[1] for e in store.events if e[0] == 'expire') == ['/s/a/h:c:80', '/s/b/h:c:81']


def test_v3_uses_one_lease_and_one_request_per_keepalive():
    store = FakeStore('v3')
    lease = store.client().key_keeper(10)
    for port in range(20):
        lease.put('/s/a/h:c:%d' % (port + 1), '10.0.0.1:%d' % (port + 1))
    assert len(set(entry['lease'] for entry in store.keys.values())) == 1
    assert store.calls.count('grant') == 1
    store.calls[:] = []
    lease.keepalive()
    assert store.calls == ['keepalive']


def test_v2_renews_each_key_with_refresh():
    store = FakeStore('v2')
    lease = store.client().key_keeper(10)
    lease.put('/s/a/h:c:80', 'x:1')
    lease.put('/s/a/h:c:81', 'x:2')
    store.calls[:] = []
    lease.keepalive()
    assert store.calls == ['refresh', 'refresh']


def test_lost_keys_are_written_again(store):
    lease = store.client().key_keeper(10)
    lease.put('/s/a/h:c:80', 'x:1')
    lease.put('/s/a/h:c:81', 'x:2')
    store.advance(11)          # etcd out of reach for longer than the TTL
    assert store.values() == {}
    assert lease.keepalive() == ['/s/a/h:c:80', '/s/a/h:c:81']
    assert store.values() == {'/s/a/h:c:80': 'x:1', '/s/a/h:c:81': 'x:2'}
    store.advance(6)
    assert lease.keepalive() == []
    store.advance(6)
    assert len(store.values()) == 2


def test_put_after_the_v3_lease_expired_restores_every_key():
    store = FakeStore('v3')
    lease = store.client().key_keeper(10)
    lease.put('/s/a/h:c:80', 'x:1')
    store.advance(11)
    lease.put('/s/a/h:c:81', 'x:2')
    assert store.values() == {'/s/a/h:c:80': 'x:1', '/s/a/h:c:81': 'x:2'}
    assert len(set(entry['lease'] for entry in store.keys.values())) == 1


def test_keep_takes_over_without_a_write_when_it_can(store):
    client = store.client()
    client.set('/s/a/h:c:80', 'x:1', ttl=10)    # left by an earlier run
    lease = client.key_keeper(10)
    node = client.get('/s/a/h:c:80')
    writes = len(store.writes())
    wrote = lease.keep('/s/a/h:c:80', 'x:1', node)
    if store.api_version == 'v2':
        # refreshed in place: watchers see nothing
        assert wrote is False and len(store.writes()) == writes
    else:
        # on another lease: moved onto this one with the same value
        assert wrote is True and store.writes()[-1] == ('set', '/s/a/h:c:80', 'x:1')
        node = client.get('/s/a/h:c:80')
        assert node.lease == lease.lease_id
        assert lease.keep('/s/a/h:c:80', 'x:1', node) is False
    assert '/s/a/h:c:80' in lease
    # another value, or nothing read: written
    assert lease.keep('/s/a/h:c:80', 'x:2', client.get('/s/a/h:c:80')) is True
    assert store.values()['/s/a/h:c:80'] == 'x:2'
    assert lease.keep('/s/a/h:c:99', 'x:3') is True


def test_delete_and_revoke(store):
    lease = store.client().key_keeper(10)
    lease.put('/s/a/h:c:80', 'x:1')
    lease.put('/s/a/h:c:81', 'x:2')
    lease.put('/s/a/h:c:82', 'x:3')
    assert lease.delete('/s/a/h:c:80') is True
    assert lease.delete('/s/a/h:c:80') is False
    store.keys['/s/other'] = {'value': 'keep me', 'lease': None, 'index': 1, 'expires': None}
    assert lease.revoke() == ['/s/a/h:c:81', '/s/a/h:c:82']
    assert store.values() == {'/s/other': 'keep me'}
    assert len(lease) == 0 and lease.keepalive() == []


def test_connection_errors_reach_the_caller(store):
    lease = store.client().key_keeper(10)
    lease.put('/s/a/h:c:80', 'x:1')
    store.down = True
    with pytest.raises(EtcdConnectionError):
        lease.keepalive()
    store.down = False
    assert lease.keepalive() == []
