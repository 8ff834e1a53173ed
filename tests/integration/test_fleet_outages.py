# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleet through etcd outages: three machines (engine + agent each, systemd faked) on a real etcd
cluster of their own. An outage of etcd moves and restarts nothing; a machine that dies while etcd
is healthy still fails over."""

from __future__ import annotations

import time

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_store import FleetStore

from etcd_server import EtcdCluster, EtcdServer
from fleet_helpers import Node, wait_until

SLEEP = '[Service]\nExecStart=/bin/sleep infinity\n'
KAPPA = SLEEP + '[X-Fleet]\nConflicts=kappa@*.service\n'
IDS = ('a' * 32, 'b' * 32, 'c' * 32)
UNITS = ('web.service', 'kappa@1.service', 'kappa@2.service', 'kappa@3.service')
TTL = 2
PREFIX = '/outage/fleet/'


def start_fleet(urls_of_node, api):
    """One Node per machine; ``urls_of_node(i)`` is the list of etcd URLs node ``i`` uses."""
    nodes = [Node(urls_of_node(i), api, PREFIX, mid, ttl=TTL).start() for i, mid in enumerate(IDS)]
    store = FleetStore(EtcdClient(endpoints=urls_of_node(0), api_version=api, timeout=2), PREFIX)
    assert wait_until(lambda: len(store.snapshot().machines) == 3)
    for name in UNITS:
        store.create_unit(name, KAPPA if name.startswith('kappa') else SLEEP, target_state='launched')
    assert wait_until(lambda: all(store.snapshot().current_state(n) == 'launched' for n in UNITS), timeout=20)
    return nodes, store


def stop_fleet(nodes, store):
    for node in nodes:
        if not node.daemon.stopping.is_set():
            node.kill()
    store.client.close()


def picture(nodes, store):
    """What a user sees: the machine column of each unit, and the main PID on that machine, plus
    how many times each unit was started anywhere."""
    snap = store.snapshot()
    placed = dict((name, snap.jobs[name].target) for name in UNITS)
    by_id = dict((node.machine_id, node) for node in nodes)
    pids = dict((name, by_id[mid].systemd.active.get(name) if mid in by_id else None)
                for name, mid in placed.items())
    starts = dict((name, sum(node.systemd.count('start', name) + node.systemd.count('restart', name)
                             for node in nodes)) for name in UNITS)
    return placed, pids, starts


def running_anywhere(nodes):
    return sorted(name for node in nodes for name in node.running())


def settle_after_outage(nodes, store):
    """Every machine registered again, then long enough for the engine to act on what it found."""
    assert wait_until(lambda: sorted(store.snapshot().machines) == sorted(IDS), timeout=30)
    time.sleep(3 * TTL)
    assert wait_until(lambda: all(store.snapshot().current_state(n) == 'launched' for n in UNITS), timeout=20)


@pytest.fixture
def etcd_cluster(tmp_path):
    cluster = EtcdCluster(3, workdir=str(tmp_path / 'cluster')).start()
    yield cluster
    cluster.stop()


@pytest.mark.parametrize('api', ['v2', 'v3'])
def test_whole_etcd_down_for_twelve_seconds_moves_and_restarts_nothing(api, etcd_cluster):
    urls = etcd_cluster.urls
    # each machine reaches etcd through its own member only (a local etcd), so a machine whose
    # member comes back last registers again last
    nodes, store = start_fleet(lambda i: [urls[i]], api)
    try:
        before = picture(nodes, store)
        assert all(before[1].values())
        etcd_cluster.halt()
        time.sleep(12)
        first, second, last = etcd_cluster.members
        first.launch()
        second.launch()
        first.wait_ready()
        second.wait_ready()
        time.sleep(5)
        last.resume()
        settle_after_outage(nodes, store)
        after = picture(nodes, store)
        assert after == before
        assert running_anywhere(nodes) == sorted(UNITS)
    finally:
        stop_fleet(nodes, store)


@pytest.mark.parametrize('api', ['v2'])
def test_one_member_paused_ten_seconds_moves_nothing(api, etcd_cluster):
    urls = etcd_cluster.urls
    # each machine talks to "its" member first, as on a real cluster
    nodes, store = start_fleet(lambda i: urls[i:] + urls[:i], api)
    try:
        before = picture(nodes, store)
        # the member machine 0 talks to first (the lab's bench pauses the leader; see bench/)
        member = etcd_cluster.members[0]
        member.pause()
        time.sleep(10)
        member.cont()
        settle_after_outage(nodes, store)
        assert picture(nodes, store) == before
        assert running_anywhere(nodes) == sorted(UNITS)
    finally:
        stop_fleet(nodes, store)


@pytest.mark.parametrize('api', ['v2'])
def test_a_machine_dying_while_etcd_is_healthy_still_fails_over(api, tmp_path):
    server = EtcdServer(name='outage-kill', workdir=str(tmp_path / 'etcd')).start()
    nodes, store = start_fleet(lambda i: [server.url], api)
    try:
        # an outage first: its grace must not slow down a later, real machine failure
        server.halt()
        time.sleep(4)
        server.resume()
        settle_after_outage(nodes, store)
        victim = [n for n in nodes if 'web.service' in n.running()][0]
        victim.kill()
        others = [n for n in nodes if n is not victim]
        assert wait_until(lambda: any('web.service' in n.running() for n in others), timeout=15)
        assert store.snapshot().jobs['web.service'].target != victim.machine_id
    finally:
        stop_fleet(nodes, store)
        server.stop()
