# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""EtcdKeyKeeper on a real etcd: a key another writer took over is left to it; a deleted one is
written again."""

from __future__ import annotations

import time

import pytest


@pytest.mark.parametrize('api', ['v2', 'v3'])
def test_keepalive_leaves_a_key_another_writer_now_owns(client, oracle, prefix):
    keeper = client.key_keeper(30)
    mine, theirs = prefix + '/s/web/mine', prefix + '/s/web/theirs'
    keeper.put(mine, 'a:80')
    keeper.put(theirs, 'a:81')
    client.set(theirs, 'b:81')          # someone else writes the key now
    assert keeper.keepalive() == []
    assert oracle.get(theirs) == 'b:81'
    assert theirs not in keeper and mine in keeper
    assert keeper.taken_over() == [theirs]
    assert keeper.taken_over() == []
    keeper.keepalive()
    assert oracle.get(theirs) == 'b:81'


@pytest.mark.parametrize('api', ['v2'])
def test_keepalive_rewrites_an_expired_key_but_not_over_a_new_owner(client, oracle, prefix):
    keeper = client.key_keeper(1)
    gone, retaken = prefix + '/s/web/gone', prefix + '/s/web/retaken'
    keeper.put(gone, 'a:80')
    keeper.put(retaken, 'a:81')
    deadline = time.monotonic() + 10
    while (oracle.get(gone) is not None or oracle.get(retaken) is not None) and time.monotonic() < deadline:
        time.sleep(0.2)
    client.set(retaken, 'b:81')         # expired, then written by another owner
    assert keeper.keepalive() == [gone]
    assert oracle.get(gone) == 'a:80'
    assert oracle.get(retaken) == 'b:81'
    assert keeper.taken_over() == [retaken]


@pytest.mark.parametrize('api', ['v2', 'v3'])
def test_keepalive_writes_a_deleted_key_again(client, oracle, prefix):
    # v3: deleting a key leaves its lease alive, so renewing the lease alone would never notice
    keeper = client.key_keeper(30)
    deleted, kept = prefix + '/s/echo/deleted', prefix + '/s/echo/kept'
    keeper.put(deleted, 'a:80')
    keeper.put(kept, 'a:81')
    client.delete(deleted)
    assert keeper.keepalive() == [deleted]
    assert oracle.get(deleted) == 'a:80'
    assert oracle.get(kept) == 'a:81'
    assert keeper.taken_over() == []
    assert keeper.keepalive() == []
    keeper.revoke()
    assert oracle.get(deleted) is None and oracle.get(kept) is None
