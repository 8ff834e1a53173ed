# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""FleetStore and the engine against a real etcd (v2 and v3)."""

from __future__ import annotations

import datetime
import json
import logging

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient, EtcdEvent, EtcdNode
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import (
    FleetStateError,
    Machine,
    UnitStateRecord,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_store import (
    FleetStore,
    UnitExists,
    UnitNotFound,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import UnitError, hash_from_bytes, parse_unit

from etcdfleet_agents.scheduling.engine import Engine

KAPPA = """[Unit]
Description=kappa-test

[Service]
ExecStart=/bin/sleep infinity

[X-Fleet]
Conflicts=kappa-test@*.service
"""

M1, M2, M3 = 'a' * 32, 'b' * 32, 'c' * 32


@pytest.fixture
def store(etcd_server, api, prefix):
    client = EtcdClient(endpoints=[etcd_server.url], api_version=api)
    yield FleetStore(client, prefix + '/fleet/')
    client.close()


def machines(store, ttl=30, meta=None):
    meta = meta or {}
    for mid, ip in ((M1, '10.0.0.1'), (M2, '10.0.0.2'), (M3, '10.0.0.3')):
        store.register_machine(Machine(id=mid, ip=ip, metadata=meta.get(mid, {})), ttl)


def engine(store, grace=0.0):
    return Engine(store, gc_grace=grace, log=logging.getLogger('test'))


def test_create_read_and_wire_format(store, oracle):
    unit_hash = store.create_unit('web.service', KAPPA)
    assert unit_hash == parse_unit(KAPPA).hash
    obj = json.loads(oracle.get(store.keys.job_object_key('web.service')))
    assert obj['Name'] == 'web.service'
    assert hash_from_bytes(obj['UnitHash']) == unit_hash
    assert json.loads(oracle.get(store.keys.unit_key(unit_hash)))['Raw'] == parse_unit(KAPPA).text
    assert oracle.get(store.keys.job_target_state_key('web.service')) == 'inactive'
    snap = store.snapshot()
    assert snap.jobs['web.service'].unit.text == parse_unit(KAPPA).text
    assert snap.current_state('web.service') == 'inactive'
    with pytest.raises(UnitExists):
        store.create_unit('web.service', KAPPA)


def test_invalid_units_are_refused_and_nothing_is_written(store, oracle):
    with pytest.raises(UnitError, match='MachineID cannot be used with Conflicts'):
        store.create_unit('bad.service', '[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=abc\nConflicts=x*\n')
    with pytest.raises(UnitError):
        store.create_unit('no-dot', '[Service]\nExecStart=/bin/true\n')
    assert store.snapshot().jobs == {}


def test_commands_follow_fleetctl(store):
    store.create_unit('web.service', KAPPA)
    with pytest.raises(FleetStateError, match='Unable to stop unit web.service in state inactive'):
        store.command('web.service', 'stop')
    assert store.command('web.service', 'start') == ('inactive', 'launched')
    assert store.command('web.service', 'start') == ('launched', 'launched')
    assert store.command('web.service', 'stop') == ('launched', 'loaded')
    assert store.command('web.service', 'unload') == ('loaded', 'inactive')
    with pytest.raises(UnitNotFound):
        store.command('nope.service', 'start')
    store.create_unit('kappa-test@.service', KAPPA)
    with pytest.raises(FleetStateError, match='template'):
        store.command('kappa-test@.service', 'start')


def test_engine_places_conflicting_instances_and_explains_the_fourth(store):
    machines(store)
    for i in (1, 2, 3, 4):
        store.create_unit('kappa-test@%d.service' % i, KAPPA, target_state='launched')
    engine(store).reconcile(store.snapshot())
    snap = store.snapshot()
    targets = [snap.jobs['kappa-test@%d.service' % i].target for i in (1, 2, 3, 4)]
    assert sorted(targets[:3]) == [M1, M2, M3]
    assert targets[3] is None
    fourth = snap.jobs['kappa-test@4.service']
    assert 'cannot be placed' in fourth.reason
    assert sorted(fourth.reason_machines) == [M1, M2, M3]
    assert all('Conflicts kappa-test@*.service' in texts[0] for texts in fourth.reason_machines.values())
    # A second pass changes nothing.
    assert engine(store).reconcile(snap) == 0


def placed_web(store, clock):
    """An engine on the clock ``clock[0]``, three machines and web.service placed: ``(engine, its machine)``."""
    eng = Engine(store, log=logging.getLogger('test'), clock=lambda: clock[0])
    machines(store)
    store.create_unit('web.service', '[Service]\nExecStart=/bin/sleep 1d\n', target_state='launched')
    eng.reconcile(store.snapshot())
    return eng, store.snapshot().jobs['web.service'].target


def test_engine_moves_units_of_a_vanished_machine_and_forgets_its_states(store):
    machines(store)
    store.create_unit('web.service', '[Service]\nExecStart=/bin/sleep 1d\n', target_state='launched')
    eng = engine(store)
    eng.reconcile(store.snapshot())
    first = store.snapshot().jobs['web.service'].target
    store.report_state(UnitStateRecord('web.service', first, 'loaded', 'active', 'running',
                                       store.snapshot().jobs['web.service'].unit_hash), 30)
    store.remove_machine(first)
    eng.reconcile(store.snapshot())
    snap = store.snapshot()
    assert snap.jobs['web.service'].target not in (None, first)
    assert first not in snap.states.get('web.service', {})


def test_a_second_etcd_outage_is_an_outage_too(store):
    """Machines seen again after one outage are not failed over when they vanish while this
    engine has lost etcd once more (or within the grace after it)."""
    clock = [100.0]
    eng, first = placed_web(store, clock)
    for dummy in range(2):
        eng.connection_lost()
        eng.connection_ok()
        clock[0] += 5                        # every machine seen again since the return
        eng.reconcile(store.snapshot())
        clock[0] += 60                       # the grace is over
        eng.reconcile(store.snapshot())
    eng.connection_lost()
    store.remove_machine(first)              # its registration lapses while etcd is away
    eng.reconcile(store.snapshot())
    assert store.snapshot().jobs['web.service'].target == first
    eng.connection_ok()
    clock[0] += 2
    eng.reconcile(store.snapshot())
    assert store.snapshot().jobs['web.service'].target == first
    clock[0] += 60                           # not back within the grace: a machine failure
    eng.reconcile(store.snapshot())
    assert store.snapshot().jobs['web.service'].target not in (None, first)


def test_how_a_registration_ended_is_read_from_history(store, api):
    """A registration removed (``remove_machine``, as a drain does) ends with a delete; one
    left to run out ends when it was due (v2 expire with the expiration it had; v3 reports the
    end of a lease as a delete)."""
    import time
    machines(store)
    index = store.snapshot().machine_index[M1]
    store.remove_machine(M1)
    ended = store.registration_end(M1, index)
    assert ended.action == 'delete'
    store.register_machine(Machine(id=M2, ip='10.0.0.2'), 1)
    index = store.snapshot().machine_index[M2]
    deadline = time.monotonic() + 6
    while M2 in store.snapshot().machines and time.monotonic() < deadline:
        time.sleep(0.2)
    ended = store.registration_end(M2, index)
    if api == 'v2':
        assert ended.action == 'expire'
        assert -3 < ended.prev_node.seconds_left() <= 0
    else:
        assert ended.action == 'delete'
        assert ended.prev_node is None or ended.prev_node.seconds_left() is None
    # still registered: no end to read
    assert store.registration_end(M3, store.snapshot().machine_index[M3]) is None


@pytest.mark.parametrize('seconds_left, held', [
    (4.0, True),      # expired before it was due (etcd v2, a member that led comes back)
    (-8.0, True),     # expired long after it was due: a renewal etcd applied late
    (-0.4, False),    # expired when due: the machine died
])
def test_a_registration_etcd_expired_early_or_late_keeps_its_units_for_a_ttl(store, monkeypatch, seconds_left, held):
    """etcd v2 can expire a key at a time that is not its owner's doing (a member that led comes
    back from a pause and applies the renewals it held; see test_fleet_outages): the engine keeps
    that machine's units in place for one machine TTL, time for it to register again, and fails
    them over then. A registration that ran out when due fails over at once."""
    clock = [100.0]
    eng, first = placed_web(store, clock)
    ends = []

    def registration_end(machine_id, index):
        ends.append(machine_id)
        # what etcd's history holds after such an expiry: an expire with the expiration it had
        due = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds_left)
        return EtcdEvent('expire', store.keys.machine_object_key(machine_id), index=index + 1,
                         prev_node=EtcdNode(store.keys.machine_object_key(machine_id),
                                            expiration=due.strftime('%Y-%m-%dT%H:%M:%S.%f') + '123Z'))

    monkeypatch.setattr(store, 'registration_end', registration_end)
    store.remove_machine(first)
    eng.reconcile(store.snapshot())
    if not held:
        assert store.snapshot().jobs['web.service'].target not in (None, first)
        return
    assert store.snapshot().jobs['web.service'].target == first
    assert eng.holding()
    clock[0] += 2
    eng.reconcile(store.snapshot())
    assert store.snapshot().jobs['web.service'].target == first
    assert ends == [first]                   # etcd's history is read once per vanishing
    clock[0] += 1.5                          # a machine TTL (3 s) later, not back: a machine failure
    eng.reconcile(store.snapshot())
    assert store.snapshot().jobs['web.service'].target not in (None, first)
    assert not eng.holding()


def test_engine_unschedules_inactive_units_and_clears_reasons(store):
    machines(store)
    store.create_unit('solo.service', '[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=region=mars\n',
                      target_state='launched')
    eng = engine(store)
    eng.reconcile(store.snapshot())
    assert 'MachineMetadata region=mars not matched' in store.snapshot().jobs['solo.service'].reason
    store.create_unit('web.service', '[Service]\nExecStart=/bin/true\n', target_state='launched')
    eng.reconcile(store.snapshot())
    assert store.snapshot().jobs['web.service'].target
    store.set_target_state('web.service', 'inactive')
    store.set_target_state('solo.service', 'inactive')
    eng.reconcile(store.snapshot())
    snap = store.snapshot()
    assert snap.jobs['web.service'].target is None
    assert snap.jobs['solo.service'].reason == ''


def test_replace_keeps_the_desired_state_and_collects_old_contents(store, oracle):
    machines(store)
    old = store.create_unit('web.service', '[Service]\nExecStart=/bin/sleep 1\n', target_state='launched')
    eng = engine(store, grace=0.0)
    eng.reconcile(store.snapshot())
    before, after = store.replace_unit('web.service', '[Service]\nExecStart=/bin/sleep 2\n')
    assert before == old and after != old
    snap = store.snapshot()
    assert snap.jobs['web.service'].target_state == 'launched'
    assert snap.jobs['web.service'].unit_hash == after
    eng.reconcile(snap)
    assert oracle.get(store.keys.unit_key(old)) is None
    assert oracle.get(store.keys.unit_key(after)) is not None
    store.destroy_unit('web.service')
    eng.reconcile(store.snapshot())
    assert oracle.get(store.keys.unit_key(after)) is None
    assert store.snapshot().jobs == {}


def test_collection_waits_for_the_grace_period(store, oracle):
    clock = [100.0]
    eng = Engine(store, gc_grace=30, log=logging.getLogger('test'), clock=lambda: clock[0])
    unit_hash = store.create_unit('web.service', '[Service]\nExecStart=/bin/true\n')
    store.destroy_unit('web.service')
    eng.reconcile(store.snapshot())
    clock[0] += 29
    eng.reconcile(store.snapshot())
    assert oracle.get(store.keys.unit_key(unit_hash)) is not None
    clock[0] += 2
    eng.reconcile(store.snapshot())
    assert oracle.get(store.keys.unit_key(unit_hash)) is None


def test_machines_expire_with_their_ttl(store):
    import time
    store.register_machine(Machine(id=M1, ip='10.0.0.1', metadata={'region': 'east'}), 1)
    assert store.snapshot().machines[M1].metadata == {'region': 'east'}
    deadline = time.monotonic() + 5
    while M1 in store.snapshot().machines and time.monotonic() < deadline:
        time.sleep(0.2)
    assert M1 not in store.snapshot().machines


def test_engine_leadership_has_one_holder(store):
    one = store.engine_lease(M1, 5)
    two = store.engine_lease(M2, 5)
    assert one.acquire() is True
    assert two.acquire() is False
    assert store.snapshot().engine_leader == M1
    one.release()
    assert two.acquire() is True
    assert store.snapshot().engine_leader == M2


def test_placing_a_unit_destroyed_meanwhile_leaves_nothing_behind(store, oracle):
    machines(store)
    store.create_unit('peer-web@4.service', '[Service]\nExecStart=/bin/true\n', target_state='launched')
    snap = store.snapshot()
    # the engine planned on ``snap``; the unit is destroyed before its placement is written
    store.destroy_unit('peer-web@4.service')
    assert store.schedule_many([('peer-web@4.service', M1)]) == set()
    assert oracle.get(store.keys.job_target_key('peer-web@4.service')) is None
    assert 'peer-web@4.service' not in store.snapshot().jobs
    assert snap.jobs['peer-web@4.service'].exists


def test_engine_collects_job_keys_left_without_their_job(store, oracle):
    clock = [100.0]
    eng = Engine(store, gc_grace=30, log=logging.getLogger('test'), clock=lambda: clock[0])
    machines(store)
    store.create_unit('kept.service', '[Service]\nExecStart=/bin/true\n', target_state='launched')
    # what an engine or an agent writing late (or fleet 1.0's own engine) leaves behind a destroy
    store.client.set(store.keys.job_target_key('peer-web@4.service'), M1)
    store.client.set(store.keys.job_heartbeat_key('gone.service'), M2)
    eng.reconcile(store.snapshot())
    assert oracle.get(store.keys.job_target_key('peer-web@4.service')) == M1
    clock[0] += 31
    eng.reconcile(store.snapshot())
    assert oracle.get(store.keys.job_target_key('peer-web@4.service')) is None
    assert oracle.get(store.keys.job_heartbeat_key('gone.service')) is None
    snap = store.snapshot()
    assert sorted(snap.jobs) == ['kept.service']
    assert snap.jobs['kept.service'].target in (M1, M2, M3)
