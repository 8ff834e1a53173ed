# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import random
import time

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import Machine

from etcdfleet_agents.scheduling import placement as P

# The three machines of the seed article (fleetctl list-machines).
M1 = Machine('7aa2819a5e2a4c9cac1e3d4b87760f7f', '172.17.8.101')
M2 = Machine('bc1eb30f9eb844648110fec1455db88e', '172.17.8.103')
M3 = Machine('e1103feeae8744c9ab93dc662803ea66', '172.17.8.102')
SEED_MACHINES = [M1, M2, M3]

KAPPA = """[Unit]
Description=kappa-test
After=docker.service
Requires=docker.service

[Service]
ExecStart=/usr/bin/docker run --name=kappa-test-%i -p 8000 centos:centos6

[X-Fleet]
X-Conflicts=kappa-test@*.service
"""

PLAIN = '[Service]\nExecStart=/bin/sleep infinity\n'


def job(name, xfleet='', state='launched', machine=None, established=False, body=PLAIN):
    text = body + ('\n[X-Fleet]\n' + xfleet + '\n' if xfleet else '')
    return P.PlacementInput.from_unit(name, text, target_state=state, machine_id=machine, established=established)


def kappa(i, machine=None, state='launched', established=False):
    return P.PlacementInput.from_unit('kappa-test@%s.service' % i, KAPPA, target_state=state,
                                      machine_id=machine, established=established)


def apply(jobs, result):
    """Jobs as they are after the engine carried out ``result``."""
    out = []
    for j in jobs:
        out.append(P.PlacementInput(j.name, j.options, j.target_state, result.placements.get(j.name), j.established))
    return out


# ------------------------------------------------------------ seed: Conflicts

def test_seed_kappa_started_one_by_one_lands_as_in_the_article():
    jobs = []
    landed = []
    for i in (1, 2, 3):
        d = P.decide(kappa(i), SEED_MACHINES, jobs)
        assert d.placed
        landed.append(d.machine_id)
        jobs.append(kappa(i, machine=d.machine_id))
    # fleetctl start kappa-test@1..3: 7aa2819a, bc1eb30f, e1103fee
    assert landed == [M1.id, M2.id, M3.id]


def test_seed_kappa_fourth_instance_cannot_be_placed_and_says_why():
    jobs = [kappa(i) for i in (1, 2, 3, 4)]
    result = P.plan(SEED_MACHINES, jobs)
    placed = dict(result.placements)
    assert sorted(placed) == ['kappa-test@1.service', 'kappa-test@2.service', 'kappa-test@3.service']
    assert len(set(placed.values())) == 3
    assert [m.unit for m in result.schedule] == sorted(placed)
    assert result.unschedule == ()

    d = result.unplaceable['kappa-test@4.service']
    assert not d.placed
    texts = d.reason_texts()
    assert sorted(texts) == sorted(m.id for m in SEED_MACHINES)
    for m in SEED_MACHINES:
        holder = [n for n, mid in placed.items() if mid == m.id][0]
        assert texts[m.id] == ['Conflicts kappa-test@*.service with %s on %s' % (holder, m.id[:8])]
        assert d.reasons[m.id][0].rule == 'Conflicts'
        assert d.reasons[m.id][0].other == holder
    assert d.message.startswith('kappa-test@4.service cannot be placed: 7aa2819a: Conflicts kappa-test@*.service')


def test_fourth_instance_placed_once_a_machine_frees_up():
    jobs = [kappa(1, M1.id), kappa(2, M2.id), kappa(3, M3.id), kappa(4)]
    jobs[1] = kappa(2, M2.id, state='inactive')
    result = P.plan(SEED_MACHINES, jobs)
    assert [(m.unit, m.machine_id) for m in result.unschedule] == [('kappa-test@2.service', M2.id)]
    assert result.unschedule[0].reason == 'desired state inactive'
    assert [(m.unit, m.machine_id) for m in result.schedule] == [('kappa-test@4.service', M2.id)]
    assert result.unplaceable == {}


def test_conflicts_apply_in_both_directions():
    # seed 003: etcd-amb-apache2 must not share a machine with apache
    amb = job('etcd-amb-apache2.service', 'X-Conflicts=apache.service', machine=M1.id)
    apache = job('apache.service')
    d = P.decide(apache, [M1], [amb])
    assert not d.placed
    assert d.reason_texts() == {M1.id: ['etcd-amb-apache2.service has Conflicts apache.service on 7aa2819a']}
    d = P.decide(apache, [M1, M2], [amb])
    assert d.machine_id == M2.id


# ------------------------------------------------------------ MachineOf

AMBASSADOR = {
    'apache.service': '',
    'etcd-amb-apache.service': 'X-ConditionMachineOf=apache.service',
    'apache-docker-reg.service': 'X-ConditionMachineOf=etcd-amb-apache.service',
    'etcd-amb-apache2.service': 'X-Conflicts=apache.service',
    'apache-dyn-amb.service': 'X-ConditionMachineOf=etcd-amb-apache2.service',
    'haproxy.service': 'X-ConditionMachineOf=apache-dyn-amb.service',
}


def test_seed_ambassador_units_group_on_two_machines():
    jobs = [job(n, x) for n, x in AMBASSADOR.items()]
    result = P.plan([M1, M2], jobs)
    assert result.unplaceable == {}
    pl = result.placements
    host_a = pl['apache.service']
    assert pl['etcd-amb-apache.service'] == host_a
    assert pl['apache-docker-reg.service'] == host_a
    host_b = pl['etcd-amb-apache2.service']
    assert host_b != host_a
    assert pl['apache-dyn-amb.service'] == host_b
    assert pl['haproxy.service'] == host_b
    # a second pass over the result changes nothing
    assert P.plan([M1, M2], apply(jobs, result)).empty


def test_machine_of_peer_not_placed_gives_reason_everywhere():
    d = P.decide(job('sidekick.service', 'MachineOf=main.service'), SEED_MACHINES, [])
    assert not d.placed
    for m in SEED_MACHINES:
        assert d.reason_texts()[m.id] == ['MachineOf main.service not on this machine (it is not placed anywhere)']


def test_machine_of_names_where_the_peer_is():
    jobs = [job('main.service', machine=M2.id)]
    d = P.decide(job('sidekick.service', 'MachineOf=main.service'), SEED_MACHINES, jobs)
    assert d.machine_id == M2.id
    assert d.reason_texts()[M1.id] == ['MachineOf main.service not on this machine (it is on bc1eb30f)']


def test_template_instance_machine_of_follows_its_own_instance():
    # seed 002: apache_discovery@.service with MachineOf=apache@%i.service
    jobs = [job('apache@1.service', 'Conflicts=apache@*.service', machine=M3.id),
            job('apache@2.service', 'Conflicts=apache@*.service', machine=M2.id)]
    for i, where in ((1, M3.id), (2, M2.id)):
        d = P.decide(job('apache_discovery@%d.service' % i, 'MachineOf=apache@%i.service'),
                     SEED_MACHINES, jobs)
        assert d.machine_id == where


def test_follower_moves_with_its_peer_on_failover():
    jobs = [job('main.service', machine=M1.id, established=True),
            job('sidekick.service', 'MachineOf=main.service', machine=M1.id, established=True),
            job('other.service', machine=M2.id)]
    result = P.plan([M2, M3], jobs)
    assert {(m.unit, m.machine_id) for m in result.unschedule} == \
        {('main.service', M1.id), ('sidekick.service', M1.id)}
    assert all('went away' in m.reason for m in result.unschedule)
    assert result.placements['main.service'] == M3.id
    assert result.placements['sidekick.service'] == M3.id


# ------------------------------------------------------------ MachineMetadata

# fleet's own documentation example
MD_A = Machine('282f949f0000000000000000000000aa', '10.10.20.1', {'diskType': 'SSD', 'region': 'us-east-1'})
MD_B = Machine('f139c5a60000000000000000000000bb', '10.10.20.2', {'region': 'us-east-1'})
MD_C = Machine('fd1d3e940000000000000000000000cc', '10.0.0.1', {'diskType': 'SSD', 'region': 'us-west-1'})
MD_MACHINES = [MD_A, MD_B, MD_C]
MD_RULE = 'MachineMetadata="region=us-east-1" "diskType=SSD"\nMachineMetadata=region=us-west-1'


def test_metadata_and_or_excludes_with_reason():
    app = job('app.service', MD_RULE)
    assert P.decide(app, MD_MACHINES, []).machine_id == MD_A.id
    assert [str(e) for e in P.exclusions(app, MD_B, {})] == [
        'MachineMetadata diskType=SSD not matched (machine has no diskType)']
    assert P.exclusions(app, MD_C, {}) == []
    # with A busy, B is tried (and refused) before C
    busy = [job('x%d.service' % i, machine=MD_A.id) for i in range(2)]
    d = P.decide(app, MD_MACHINES, busy)
    assert d.machine_id == MD_C.id
    assert d.reason_texts() == {
        MD_B.id: ['MachineMetadata diskType=SSD not matched (machine has no diskType)']}


def test_metadata_reason_shows_machine_value():
    d = P.decide(job('east.service', 'MachineMetadata=region=us-east-1'), [MD_C], [])
    assert not d.placed
    assert d.reason_texts() == {MD_C.id: [
        'MachineMetadata region=us-east-1 not matched (machine has region=us-west-1)']}
    d = P.decide(job('either.service', 'MachineMetadata=region=eu\nMachineMetadata=region=ap'), [MD_C], [])
    assert d.reason_texts()[MD_C.id] == [
        'MachineMetadata region=eu or region=ap not matched (machine has region=us-west-1)']


def test_global_unit_runs_on_every_matching_machine():
    g = job('app.service', 'Global=true\n' + MD_RULE)
    running, reasons = P.global_placement(g, MD_MACHINES, [])
    assert running == [MD_A.id, MD_C.id]
    assert [str(e) for e in reasons[MD_B.id]] == ['MachineMetadata diskType=SSD not matched (machine has no diskType)']
    # the engine does not place global units
    result = P.plan(MD_MACHINES, [g])
    assert result.empty and result.unplaceable == {}
    # each agent knows whether to run it
    assert list(P.desired_units(MD_A.id, MD_MACHINES, [g])) == ['app.service']
    assert list(P.desired_units(MD_B.id, MD_MACHINES, [g])) == []


def test_global_unit_without_metadata_runs_everywhere_and_counts_as_load():
    g = job('monitor.service', 'Global=true')
    units = P.machine_units(SEED_MACHINES, [g, job('a.service', machine=M1.id)])
    assert all('monitor.service' in units[m.id] for m in SEED_MACHINES)
    # M1 holds a.service + monitor, so the next unit goes to M2 (fewest units, then ID)
    d = P.decide(job('b.service'), SEED_MACHINES, [g, job('a.service', machine=M1.id)])
    assert d.machine_id == M2.id


def test_global_conflicts_both_ways():
    g = job('monitor.service', 'Global=true\nConflicts=web*')
    web = job('web.service', machine=M1.id)
    running, reasons = P.global_placement(g, SEED_MACHINES, [web])
    assert running == [M2.id, M3.id]
    assert [str(e) for e in reasons[M1.id]] == ['Conflicts web* with web.service on 7aa2819a']
    # a new web unit stays off machines running the conflicting global unit
    web2 = job('web2.service')
    assert P.decide(web2, SEED_MACHINES, [g, web]).machine_id == M1.id
    present = P.machine_units(SEED_MACHINES, [g, web])
    assert [str(e) for e in P.exclusions(web2, M2, present[M2.id])] == \
        ['monitor.service has Conflicts web* on bc1eb30f']
    d = P.decide(web2, [M2, M3], [g, web])
    assert not d.placed
    assert d.reason_texts() == {M2.id: ['monitor.service has Conflicts web* on bc1eb30f'],
                                M3.id: ['monitor.service has Conflicts web* on e1103fee']}


def test_inactive_global_unit_runs_nowhere():
    g = job('monitor.service', 'Global=true', state='inactive')
    running, reasons = P.global_placement(g, SEED_MACHINES, [])
    assert running == []
    assert [str(e) for e in reasons[M1.id]] == ['desired state is inactive']


# ------------------------------------------------------------ MachineID

def test_machine_id_full_and_short():
    for value in (M3.id, M3.id[:8]):
        d = P.decide(job('pinned.service', 'MachineID=%s' % value), SEED_MACHINES, [])
        assert d.machine_id == M3.id
        assert d.reason_texts()[M1.id] == ['MachineID %s is not this machine' % value]


def test_machine_id_unknown_is_unplaceable():
    d = P.decide(job('pinned.service', 'X-ConditionMachineID=deadbeef'), SEED_MACHINES, [])
    assert not d.placed
    assert d.reason_texts()[M2.id] == ['MachineID (X-ConditionMachineID) deadbeef is not this machine']


# ------------------------------------------------------------ load order

def test_least_loaded_then_machine_id():
    jobs = [job('a.service', machine=M1.id), job('b.service', machine=M1.id),
            job('c.service', machine=M3.id)]
    assert P.decide(job('new.service'), SEED_MACHINES, jobs).machine_id == M2.id
    jobs.append(job('d.service', machine=M2.id))
    assert P.decide(job('new.service'), SEED_MACHINES, jobs).machine_id == M2.id
    # inactive units do not count as load
    jobs = [job('a.service', machine=M1.id, state='inactive')]
    assert P.decide(job('new.service'), SEED_MACHINES, jobs).machine_id == M1.id


def test_plan_balances_and_is_deterministic():
    jobs = [job('u%03d.service' % i) for i in range(30)]
    first = P.plan(SEED_MACHINES, jobs)
    counts = {}
    for mid in first.placements.values():
        counts[mid] = counts.get(mid, 0) + 1
    assert sorted(counts.values()) == [10, 10, 10]
    shuffled = list(jobs)
    random.Random(7).shuffle(shuffled)
    machines = list(SEED_MACHINES)
    random.Random(3).shuffle(machines)
    assert P.plan(machines, shuffled) == first


def test_plan_300_units_is_quick_and_even():
    jobs = [job('sleep@%d.service' % i) for i in range(300)]
    start = time.monotonic()
    result = P.plan(SEED_MACHINES, jobs)
    elapsed = time.monotonic() - start
    assert len(result.placements) == 300
    per = {}
    for mid in result.placements.values():
        per[mid] = per.get(mid, 0) + 1
    assert sorted(per.values()) == [100, 100, 100]
    assert elapsed < 5.0


def test_no_machines():
    result = P.plan([], [job('a.service')])
    assert result.unplaceable['a.service'].message == 'a.service cannot be placed: no machines are registered'


def test_template_is_never_placed():
    t = P.PlacementInput.from_unit('kappa-test@.service', KAPPA, target_state='launched')
    result = P.plan(SEED_MACHINES, [t])
    assert result.schedule == ()
    assert 'template' in result.unplaceable['kappa-test@.service'].message
    assert 'kappa-test@1.service' in result.unplaceable['kappa-test@.service'].message


def test_inactive_units_are_not_placed():
    result = P.plan(SEED_MACHINES, [job('a.service', state='inactive')])
    assert result.empty and result.unplaceable == {}


# ------------------------------------------------------------ unscheduling

def test_unfit_units_reasons():
    machines = [M1, Machine(M2.id, M2.ip, {'region': 'west'})]
    jobs = [job('gone.service', machine=M3.id),
            job('stopped.service', state='inactive', machine=M1.id),
            job('east.service', 'MachineMetadata=region=east', machine=M2.id),
            job('fine.service', machine=M1.id)]
    moves = {m.unit: m for m in P.unfit_units(machines, jobs)}
    assert sorted(moves) == ['east.service', 'gone.service', 'stopped.service']
    assert moves['gone.service'].reason == 'machine %s went away' % M3.id
    assert moves['stopped.service'].reason == 'desired state inactive'
    assert moves['east.service'].machine_id == M2.id
    assert 'MachineMetadata region=east not matched (machine has region=west)' in moves['east.service'].reason


def test_a_drained_machine_keeps_only_its_global_units():
    drained = Machine(M1.id, M1.ip, {'drained': 'true'})
    machines = [drained, M2, M3]
    jobs = [kappa(1, M1.id, established=True), kappa(2, M2.id, established=True),
            job('main.service', machine=M1.id), job('side.service', 'MachineOf=main.service', machine=M1.id),
            job('monitor.service', 'Global=true')]
    result = P.plan(machines, jobs)
    moves = {m.unit: m for m in result.unschedule}
    assert sorted(moves) == ['kappa-test@1.service', 'main.service', 'side.service']
    assert 'machine 7aa2819a is drained' in moves['main.service'].reason
    # Conflicts and MachineOf still hold where they go
    assert result.placements['kappa-test@1.service'] == M3.id
    assert result.placements['main.service'] == result.placements['side.service'] != M1.id
    assert 'monitor.service' in P.desired_units(M1.id, machines, jobs)
    # nothing new is placed there, and the reason says why
    d = P.decide(job('new.service', 'MachineID=%s' % M1.id[:8]), machines, jobs)
    assert not d.placed and d.reason_texts()[M1.id] == ['machine 7aa2819a is drained']
    # any other value of the metadata is no mark
    assert not Machine(M1.id, M1.ip, {'drained': 'no'}).drained


def test_duplicate_after_partition_keeps_the_running_unit():
    # after a partition heals two instances that conflict share a machine:
    # the one reported running stays, the other moves
    jobs = [kappa(1, M1.id, established=True), kappa(2, M1.id), kappa(3, M3.id, established=True)]
    result = P.plan(SEED_MACHINES, jobs)
    assert [(m.unit, m.machine_id) for m in result.unschedule] == [('kappa-test@2.service', M1.id)]
    assert 'Conflicts kappa-test@*.service with kappa-test@1.service' in result.unschedule[0].reason
    assert [(m.unit, m.machine_id) for m in result.schedule] == [('kappa-test@2.service', M2.id)]

    established_second = [kappa(1, M1.id), kappa(2, M1.id, established=True), kappa(3, M3.id)]
    result = P.plan(SEED_MACHINES, established_second)
    assert [m.unit for m in result.unschedule] == ['kappa-test@1.service']


def test_plan_reaches_a_fixed_point():
    jobs = [kappa(i) for i in range(1, 6)] + [job(n, x) for n, x in AMBASSADOR.items()] + \
        [job('g.service', 'Global=true')]
    result = P.plan(SEED_MACHINES, jobs)
    again = P.plan(SEED_MACHINES, apply(jobs, result))
    assert again.empty
    assert set(again.unplaceable) == set(result.unplaceable) == {'kappa-test@4.service', 'kappa-test@5.service'}


def test_failover_moves_units_of_a_dead_machine():
    jobs = [kappa(1, M1.id, established=True), kappa(2, M2.id, established=True),
            job('web.service', machine=M2.id, established=True)]
    result = P.plan([M1, M3], jobs)
    assert {(m.unit, m.machine_id) for m in result.unschedule} == \
        {('kappa-test@2.service', M2.id), ('web.service', M2.id)}
    assert result.placements['kappa-test@2.service'] == M3.id
    assert result.placements['web.service'] == M1.id
    assert result.placements['kappa-test@1.service'] == M1.id


# ------------------------------------------------------------ Replaces

def test_replaces_takes_the_place_and_moves_the_replaced_unit():
    # fleet's functional test: replace.0 on m0, replace.1 + replace.2 on m1,
    # replace-kick0 replaces replace.0
    m0, m1 = M1, M2
    jobs = [job('replace.0.service', machine=m0.id, established=True),
            job('replace.1.service', machine=m1.id, established=True),
            job('replace.2.service', 'MachineOf=replace.1.service', machine=m1.id, established=True),
            job('replace-kick0.service', 'Replaces=replace.0.service')]
    result = P.plan([m0, m1], jobs)
    assert result.placements['replace-kick0.service'] == m0.id
    assert result.placements['replace.0.service'] == m1.id
    assert [(m.unit, m.machine_id, m.reason) for m in result.unschedule] == [
        ('replace.0.service', m0.id, 'replaced by replace-kick0.service on 7aa2819a')]
    assert P.plan([m0, m1], apply(jobs, result)).empty


def test_replaced_unit_cannot_come_back_next_to_its_replacement():
    jobs = [job('kick.service', 'Replaces=old.service', machine=M1.id)]
    d = P.decide(job('old.service'), [M1], jobs)
    assert not d.placed
    assert d.reason_texts() == {M1.id: ['kick.service on 7aa2819a has Replaces old.service']}


def test_replaced_unit_without_other_machine_is_reported():
    jobs = [job('old.service', machine=M1.id, established=True),
            job('kick.service', 'Replaces=old.service')]
    result = P.plan([M1], jobs)
    assert result.placements == {'kick.service': M1.id}
    assert 'has Replaces old.service' in result.unplaceable['old.service'].message


def test_mutual_replace_acts_as_conflict():
    jobs = [job('a.service', 'Replaces=b.service', machine=M1.id)]
    b = job('b.service', 'Replaces=a.service')
    d = P.decide(b, [M1], jobs)
    assert not d.placed and d.evicts == ()
    assert d.reason_texts() == {M1.id: ['b.service and a.service on 7aa2819a replace each other']}
    assert P.decide(b, [M1, M2], jobs).machine_id == M2.id


# ------------------------------------------------------------ agent view

def test_desired_units_for_an_agent():
    g = job('monitor.service', 'Global=true\nMachineMetadata=role=worker')
    machines = [Machine(M1.id, M1.ip, {'role': 'worker'}), Machine(M2.id, M2.ip, {'role': 'db'})]
    jobs = [g, kappa(1, M1.id), kappa(2, M2.id, state='loaded'), kappa(3, M1.id, state='inactive')]
    mine = P.desired_units(M1.id, machines, jobs)
    assert sorted(mine) == ['kappa-test@1.service', 'monitor.service']
    theirs = P.desired_units(M2.id, machines, jobs)
    assert sorted(theirs) == ['kappa-test@2.service']
    assert theirs['kappa-test@2.service'].target_state == 'loaded'
    assert P.desired_units('unknown', machines, jobs) == {}


def test_decision_message_for_placed_unit():
    d = P.decide(job('a.service'), [M1], [])
    assert d.message == 'a.service placed on 7aa2819a'
    assert d.evicts == ()


@pytest.mark.parametrize('state', ['loaded', 'launched'])
def test_loaded_units_are_placed_too(state):
    result = P.plan([M1], [job('a.service', state=state)])
    assert result.placements == {'a.service': M1.id}
    assert result.schedule[0].reason == 'desired state %s and unit not placed' % state


def test_conflict_reason_names_a_few_units_then_counts():
    jobs = [kappa(i, M1.id) for i in range(1, 6)]
    d = P.decide(kappa(9), [M1], jobs)
    assert d.reason_texts() == {M1.id: [
        'Conflicts kappa-test@*.service with kappa-test@1.service, kappa-test@2.service, '
        'kappa-test@3.service and 2 more on 7aa2819a']}
    reverse = P.decide(job('kappa-test@x.service'), [M1], jobs[:2])
    assert reverse.reason_texts() == {M1.id: [
        'kappa-test@1.service, kappa-test@2.service have Conflicts kappa-test@*.service on 7aa2819a']}


def test_placement_scales_to_large_snapshots():
    machines = [Machine('%032x' % i, '10.0.0.%d' % i, {'zone': 'z%d' % (i % 3)}) for i in range(10)]
    text = ('[Service]\nExecStart=/bin/sleep infinity\n[X-Fleet]\nConflicts=svc%p-*.service\n'
            'MachineMetadata=zone=z0\nMachineMetadata=zone=z1\n')
    jobs = [P.PlacementInput.from_unit('svc%d-%d.service' % (i % 50, i), text) for i in range(1000)]
    jobs += [P.PlacementInput.from_unit('side%d.service' % i,
                                        '[Service]\nExecStart=/x\n[X-Fleet]\nMachineOf=svc%d-%d.service\n' % (i % 50, i))
             for i in range(300)]
    start = time.monotonic()
    result = P.plan(machines, jobs)
    assert len(result.placements) == 1300 and result.unplaceable == {}
    zones = {m.id: m.metadata['zone'] for m in machines}
    assert {zones[mid] for mid in result.placements.values()} == {'z0', 'z1'}
    steady = P.plan(machines, [P.PlacementInput(j.name, j.options, j.target_state, result.placements[j.name], True)
                               for j in jobs])
    assert steady.empty
    assert time.monotonic() - start < 20.0
