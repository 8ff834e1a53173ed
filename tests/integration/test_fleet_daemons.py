# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet daemon (agent + engine) of three machines against a real etcd, systemd faked."""

from __future__ import annotations

import json
import threading
import time

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_store import FleetStore

from fleet_helpers import Node, wait_until

KAPPA = """[Unit]
Description=kappa-test

[Service]
ExecStart=/bin/sleep infinity

[X-Fleet]
Conflicts=kappa-test@*.service
"""
SLEEP = '[Service]\nExecStart=/bin/sleep infinity\n'
IDS = ('1' * 32, '2' * 32, '3' * 32)
META = ('region=east,disk=ssd', 'region=west,disk=ssd', 'region=east,disk=hdd')


@pytest.fixture
def cluster(etcd_server, api, prefix):
    fleet_prefix = prefix + '/fleet/'
    nodes = [Node(etcd_server.url, api, fleet_prefix, mid, ttl=2, metadata=meta).start()
             for mid, meta in zip(IDS, META)]
    client = EtcdClient(endpoints=[etcd_server.url], api_version=api)
    store = FleetStore(client, fleet_prefix)
    assert wait_until(lambda: len(store.snapshot().machines) == 3)
    yield store, nodes
    for node in nodes:
        if not node.daemon.stopping.is_set():
            node.kill()
    client.close()


def launched(store, *names):
    def check():
        snap = store.snapshot()
        return all(snap.current_state(n) == 'launched' for n in names)
    return wait_until(check)


def where(nodes, name):
    return [n for n in nodes if name in n.running()]


def test_conflicting_instances_spread_and_the_fourth_waits_with_a_reason(cluster):
    store, nodes = cluster
    for i in (1, 2, 3, 4):
        store.create_unit('kappa-test@%d.service' % i, KAPPA, target_state='launched')
    assert launched(store, 'kappa-test@1.service', 'kappa-test@2.service', 'kappa-test@3.service')
    assert sorted(len(n.running()) for n in nodes) == [1, 1, 1]
    assert wait_until(lambda: store.snapshot().jobs['kappa-test@4.service'].reason)
    assert 'Conflicts' in store.snapshot().jobs['kappa-test@4.service'].reason
    assert not where(nodes, 'kappa-test@4.service')


def test_machine_of_metadata_and_global(cluster):
    store, nodes = cluster
    store.create_unit('main.service', SLEEP, target_state='launched')
    store.create_unit('side.service', SLEEP + '[X-Fleet]\nMachineOf=main.service\n', target_state='launched')
    store.create_unit('west.service', SLEEP + '[X-Fleet]\nMachineMetadata=region=west\n', target_state='launched')
    store.create_unit('ssd.service', SLEEP + '[X-Fleet]\nGlobal=true\nMachineMetadata=disk=ssd\n',
                      target_state='launched')
    assert launched(store, 'main.service', 'side.service', 'west.service')
    assert where(nodes, 'main.service') == where(nodes, 'side.service')
    assert where(nodes, 'west.service') == [nodes[1]]
    assert wait_until(lambda: where(nodes, 'ssd.service') == nodes[:2])
    assert wait_until(lambda: sorted(store.snapshot().states.get('ssd.service', {})) == list(IDS[:2]))


def test_stop_start_and_destroy(cluster):
    store, nodes = cluster
    store.create_unit('web.service', SLEEP, target_state='launched')
    assert launched(store, 'web.service')
    node = where(nodes, 'web.service')[0]
    store.command('web.service', 'stop')
    assert wait_until(lambda: store.snapshot().current_state('web.service') == 'loaded')
    # (the state turns loaded when the heartbeat goes, before systemd has stopped the unit)
    assert wait_until(lambda: 'web.service' not in node.running())
    assert 'web.service' in node.systemd.files
    store.command('web.service', 'start')
    assert launched(store, 'web.service')
    assert where(nodes, 'web.service') == [node]
    store.destroy_unit('web.service')
    assert wait_until(lambda: 'web.service' not in node.systemd.files)
    assert not where(nodes, 'web.service')
    assert wait_until(lambda: 'web.service' not in store.snapshot().states)


def test_replace_restarts_the_unit_with_new_contents(cluster):
    store, nodes = cluster
    store.create_unit('web.service', SLEEP, target_state='launched')
    assert launched(store, 'web.service')
    node = where(nodes, 'web.service')[0]
    pid = node.systemd.active['web.service']
    store.replace_unit('web.service', '[Service]\nExecStart=/bin/sleep 1d\n')
    assert wait_until(lambda: 'sleep 1d' in node.systemd.files.get('web.service', ''))
    assert wait_until(lambda: node.systemd.active.get('web.service') not in (None, pid))
    assert where(nodes, 'web.service') == [node]


def test_failover_after_a_machine_dies_and_no_duplicate_when_it_returns(cluster):
    store, nodes = cluster
    store.create_unit('web.service', SLEEP, target_state='launched')
    assert launched(store, 'web.service')
    victim = where(nodes, 'web.service')[0]
    start = time.monotonic()
    victim.kill()
    others = [n for n in nodes if n is not victim]
    assert wait_until(lambda: any('web.service' in n.running() for n in others), timeout=15)
    elapsed = time.monotonic() - start
    assert elapsed < 15
    # The dead machine's systemd still runs the unit (a partition, not a power cut); its agent
    # comes back and must stop the copy that moved away.
    assert 'web.service' in victim.running()
    victim.start()
    assert wait_until(lambda: 'web.service' not in victim.running())
    assert len(where(nodes, 'web.service')) == 1
    assert launched(store, 'web.service')


def test_drain_moves_units_one_copy_at_a_time_and_uncordon_takes_units_again(cluster):
    store, nodes = cluster
    for node in nodes:
        node.systemd.stop_delay = 1.0    # a unit takes a second to stop, running meanwhile
    kappas = ['kappa-test@1.service', 'kappa-test@2.service']
    for name in kappas:
        store.create_unit(name, KAPPA, target_state='launched')
    store.create_unit('main.service', SLEEP, target_state='launched')
    store.create_unit('side.service', SLEEP + '[X-Fleet]\nMachineOf=main.service\n', target_state='launched')
    store.create_unit('everywhere.service', SLEEP + '[X-Fleet]\nGlobal=true\n', target_state='launched')
    placed = kappas + ['main.service', 'side.service']
    assert launched(store, *placed)
    assert wait_until(lambda: all('everywhere.service' in n.running() for n in nodes))
    victim = where(nodes, 'main.service')[0]
    others = [n for n in nodes if n is not victim]
    twice, sampling = set(), threading.Event()

    def sample():
        while not sampling.is_set():
            twice.update(name for name in placed if len(where(nodes, name)) > 1)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        assert store.set_machine_metadata(victim.machine_id, 'drained', 'true')
        assert not store.set_machine_metadata(victim.machine_id, 'drained', 'true')
        assert wait_until(lambda: victim.running() == ['everywhere.service']
                          and all(len(where(others, name)) == 1 for name in placed))
        assert launched(store, *placed)
    finally:
        sampling.set()
        sampler.join()
    assert not twice, 'ran on two machines at once: %s' % sorted(twice)
    assert where(nodes, 'main.service') == where(nodes, 'side.service')
    assert where(nodes, kappas[0]) != where(nodes, kappas[1])
    # the mark is in the machine's object, where fleetctl 1.0 reads the metadata
    raw = store.client.get(store.keys.machine_object_key(victim.machine_id)).value
    assert json.loads(raw)['Metadata']['drained'] == 'true'
    # nothing new goes there: the third instance has nowhere to go, and says why
    store.create_unit('kappa-test@3.service', KAPPA, target_state='launched')
    assert wait_until(lambda: 'drained' in store.snapshot().jobs['kappa-test@3.service'].reason)
    assert store.set_machine_metadata(victim.machine_id, 'drained', None)
    assert launched(store, 'kappa-test@3.service')
    assert where(nodes, 'kappa-test@3.service') == [victim]
    assert wait_until(lambda: 'drained' not in json.loads(
        store.client.get(store.keys.machine_object_key(victim.machine_id)).value)['Metadata'])


def test_agent_restart_keeps_units_running(cluster):
    store, nodes = cluster
    store.create_unit('web.service', SLEEP, target_state='launched')
    assert launched(store, 'web.service')
    node = where(nodes, 'web.service')[0]
    pid = node.systemd.active['web.service']
    starts = node.systemd.count('start', 'web.service')
    node.stop()
    assert node.systemd.active['web.service'] == pid
    # Longer than the machine TTL: the grace registration keeps the unit in place.
    time.sleep(3)
    assert store.snapshot().jobs['web.service'].target == node.machine_id
    node.start()
    time.sleep(1.5)
    assert node.systemd.active['web.service'] == pid
    assert node.systemd.count('start', 'web.service') == starts
    assert store.snapshot().jobs['web.service'].target == node.machine_id
    assert launched(store, 'web.service')


def test_engine_leadership_moves_when_the_leader_dies(cluster):
    store, nodes = cluster
    leader = wait_until(lambda: store.snapshot().engine_leader)
    holder = [n for n in nodes if n.machine_id == leader][0]
    holder.kill()
    assert wait_until(lambda: store.snapshot().engine_leader not in (None, leader), timeout=15)
    store.create_unit('after.service', SLEEP, target_state='launched')
    assert launched(store, 'after.service')


def test_once_mode_places_and_runs(etcd_server, api, prefix):
    fleet_prefix = prefix + '/fleet/'
    node = Node(etcd_server.url, api, fleet_prefix, IDS[0], ttl=5, extra=['--once'])
    store = FleetStore(EtcdClient(endpoints=[etcd_server.url], api_version=api), fleet_prefix)
    store.create_unit('web.service', SLEEP, target_state='launched')
    from etcdfleet_agents.daemons.fleet import FleetDaemon
    daemon = FleetDaemon(args=node.args, environ={}, client_factory=node.client, systemd=node.systemd)
    assert daemon.run_once() == 0
    assert node.running() == ['web.service']
    snap = store.snapshot()
    assert snap.jobs['web.service'].target == IDS[0]
    assert snap.current_state('web.service') == 'launched'
