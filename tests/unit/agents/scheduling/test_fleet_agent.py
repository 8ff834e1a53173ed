# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet agent's decisions (no etcd, systemd faked)."""

import os
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import Machine  # noqa: E402
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_snapshot import RegistryJob, Snapshot  # noqa: E402
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import parse_unit  # noqa: E402

from etcdfleet_agents.scheduling.agent import Agent  # noqa: E402
from fake_systemd import FakeSystemd  # noqa: E402

HERE, OTHER = 'a' * 32, 'b' * 32
SLEEP = parse_unit('[Service]\nExecStart=/bin/sleep infinity\n')


class FakeStore(object):
    def __init__(self):
        self.cleared = []

    def clear_heartbeats(self, names, machine_id):
        self.cleared.extend(names)
        return set(names)


def snapshot(jobs, machines=None):
    snap = Snapshot(revision=1)
    for mid, meta in (machines or {HERE: {}, OTHER: {}}).items():
        snap.machines[mid] = Machine(id=mid, ip='10.0.0.1', metadata=meta)
    for name, (unit, state, target) in jobs.items():
        entry = RegistryJob(name)
        entry.unit = unit
        entry.unit_hash = unit.hash
        entry.target_state = state
        entry.target = target
        snap.jobs[name] = entry
        snap.contents[unit.hash] = unit
    return snap


@pytest.fixture
def agent():
    return Agent(FakeStore(), Machine(id=HERE, ip='10.0.0.1', metadata={'disk': 'ssd'}), FakeSystemd())


def test_launch_writes_and_starts_once_without_a_reload(agent):
    snap = snapshot({'web.service': (SLEEP, 'launched', HERE), 'far.service': (SLEEP, 'launched', OTHER)})
    agent.reconcile(snap)
    sd = agent.systemd
    assert sd.files == {'web.service': SLEEP.text}
    # a new file is read by systemd when its start job asks for it
    assert sd.count('daemon-reload') == 0 and sd.count('start', 'web.service') == 1
    assert sd.count('start', 'far.service') == 0
    agent.reconcile(snap)
    assert sd.count('daemon-reload') == 0 and sd.count('start') == 1
    assert agent.managed_units() == {'web.service': ('launched', SLEEP.hash, False)}


def test_new_loaded_units_and_changed_or_removed_files_reload_systemd(agent):
    sd = agent.systemd
    agent.reconcile(snapshot({'web.service': (SLEEP, 'loaded', HERE)}))
    assert sd.count('daemon-reload') == 1 and sd.loaded == {'web.service': SLEEP.text}
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', HERE)}))
    assert sd.count('daemon-reload') == 1
    other = parse_unit(SLEEP.text.replace('infinity', '600'))
    agent.reconcile(snapshot({'web.service': (other, 'launched', HERE)}))
    assert sd.count('daemon-reload') == 2 and sd.loaded['web.service'] == other.text
    agent.reconcile(snapshot({}))
    assert sd.count('daemon-reload') == 3 and sd.files == {}


def test_a_restarted_agent_leaves_running_units_alone(agent):
    snap = snapshot({'web.service': (SLEEP, 'launched', HERE)})
    agent.reconcile(snap)
    pid = agent.systemd.active['web.service']
    fresh = Agent(FakeStore(), agent.machine, agent.systemd)
    fresh.reconcile(snap)
    assert agent.systemd.active['web.service'] == pid
    assert agent.systemd.count('start') == 1
    assert agent.systemd.count('daemon-reload') == 0


def test_a_restarted_agent_starts_what_is_not_running(agent):
    agent.systemd.files['web.service'] = SLEEP.text
    agent.systemd.loaded['web.service'] = SLEEP.text
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', HERE)}))
    assert agent.systemd.count('start', 'web.service') == 1
    assert agent.systemd.count('write') == 0


def test_stop_then_move_away(agent):
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', HERE)}))
    agent.reconcile(snapshot({'web.service': (SLEEP, 'loaded', HERE)}))
    assert 'web.service' not in agent.systemd.active
    assert 'web.service' in agent.systemd.files
    assert agent.store.cleared == ['web.service']
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', OTHER)}))
    assert agent.systemd.files == {}
    assert agent.managed_units() == {}


def test_new_contents_restart_a_running_unit(agent):
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', HERE)}))
    pid = agent.systemd.active['web.service']
    other = parse_unit('[Service]\nExecStart=/bin/sleep 1d\n')
    agent.reconcile(snapshot({'web.service': (other, 'launched', HERE)}))
    assert agent.systemd.files['web.service'] == other.text
    assert agent.systemd.count('restart', 'web.service') == 1
    assert agent.systemd.active['web.service'] != pid


def test_global_units_follow_metadata(agent):
    ssd = parse_unit('[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\nMachineMetadata=disk=ssd\n')
    hdd = parse_unit('[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\nMachineMetadata=disk=hdd\n')
    agent.reconcile(snapshot({'ssd.service': (ssd, 'launched', None), 'hdd.service': (hdd, 'launched', None)},
                             machines={OTHER: {}}))
    assert sorted(agent.systemd.files) == ['ssd.service']


def test_own_machine_missing_from_the_registry_stops_nothing(agent):
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', HERE)}))
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', HERE)}, machines={OTHER: {}}))
    assert 'web.service' in agent.systemd.active


def test_a_destroyed_unit_is_stopped_completely_before_its_file_goes(agent):
    # A provider and its sidekick destroyed together: each stop job must have finished before the
    # files are removed and systemd reloads, or a stop queued behind another never runs its ExecStop.
    pair = {'web.service': (SLEEP, 'launched', HERE), 'web-side.service': (SLEEP, 'launched', HERE)}
    agent.reconcile(snapshot(pair))
    sd = agent.systemd
    assert sd.count('start') == 2
    del sd.calls[:]
    agent.reconcile(snapshot({}))
    order = [call for call in sd.calls if call[0] in ('stop', 'remove', 'daemon-reload')]
    assert order == [('stop', 'web-side.service'), ('stop', 'web.service'), ('remove', 'web-side.service'),
                     ('remove', 'web.service'), ('daemon-reload',)], order
    assert sd.stop_waited == {'web-side.service': True, 'web.service': True}
    assert sd.files == {}


def test_a_sidekick_starts_again_with_the_unit_it_binds_to(agent):
    sidekick = parse_unit('[Unit]\nBindsTo=web.service\nAfter=web.service\n[Service]\nExecStart=/bin/sleep 1d\n')
    sd = agent.systemd
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', HERE), 'side.service': (sidekick, 'launched', HERE)}))
    assert sd.count('start', 'side.service') == 1
    # fleetctl stop web.service: systemd stops the sidekick with it (BindsTo=)
    agent.reconcile(snapshot({'web.service': (SLEEP, 'loaded', HERE), 'side.service': (sidekick, 'launched', HERE)}))
    sd.active.pop('side.service', None)
    # fleetctl start web.service: the sidekick, still launched, starts with it
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', HERE), 'side.service': (sidekick, 'launched', HERE)}))
    assert 'web.service' in sd.active and 'side.service' in sd.active
    assert sd.count('start', 'side.service') == 2


def test_a_template_sidekick_starts_again_with_its_instance(agent):
    """The seeds' pair: apache-discovery@.service has BindsTo=apache@%i.service."""
    sidekick = parse_unit('[Unit]\nBindsTo=apache@%i.service\nAfter=apache@%i.service\n'
                          '[Service]\nExecStart=/bin/sleep 1d\n')
    sd = agent.systemd
    units = {'apache@1.service': (SLEEP, 'launched', HERE), 'apache-discovery@1.service': (sidekick, 'launched', HERE)}
    agent.reconcile(snapshot(units))
    agent.reconcile(snapshot(dict(units, **{'apache@1.service': (SLEEP, 'loaded', HERE)})))
    sd.active.pop('apache-discovery@1.service', None)
    agent.reconcile(snapshot(units))
    assert 'apache@1.service' in sd.active and 'apache-discovery@1.service' in sd.active
    assert sd.count('start', 'apache-discovery@1.service') == 2


def test_a_sidekick_stopped_on_purpose_stays_stopped(agent):
    sidekick = parse_unit('[Unit]\nBindsTo=web.service\n[Service]\nExecStart=/bin/sleep 1d\n')
    sd = agent.systemd
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', HERE), 'side.service': (sidekick, 'launched', HERE)}))
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', HERE), 'side.service': (sidekick, 'loaded', HERE)}))
    agent.reconcile(snapshot({'web.service': (SLEEP, 'loaded', HERE), 'side.service': (sidekick, 'loaded', HERE)}))
    agent.reconcile(snapshot({'web.service': (SLEEP, 'launched', HERE), 'side.service': (sidekick, 'loaded', HERE)}))
    assert 'web.service' in sd.active and 'side.service' not in sd.active
    assert sd.count('start', 'side.service') == 1
