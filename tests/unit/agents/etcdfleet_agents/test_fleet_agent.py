# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet agent's decisions, the systemd layer and fleetctl's pure parts (no etcd)."""

from __future__ import annotations

import os
import stat
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import EtcdEvent  # noqa: E402
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_keys import FleetKeys  # noqa: E402
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import Machine  # noqa: E402
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_snapshot import RegistryJob, Snapshot  # noqa: E402
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import parse_unit  # noqa: E402

from etcdfleet_agents import fleetctl  # noqa: E402
from etcdfleet_agents.fleet import relevant  # noqa: E402
from etcdfleet_agents.fleet_agent import Agent  # noqa: E402
from etcdfleet_agents.fleet_systemd import Systemd, SystemdError  # noqa: E402
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


def test_relevant_events():
    keys = FleetKeys('/f/')
    assert relevant(keys, EtcdEvent('update', '/f/job/a.service/target'))
    assert relevant(keys, EtcdEvent('update', '/f/job/a.service/target-state'))
    assert relevant(keys, EtcdEvent('expire', '/f/machines/%s/object' % HERE))
    assert relevant(keys, EtcdEvent('delete', '/f/lease/engine-leader'))
    assert not relevant(keys, EtcdEvent('update', '/f/job/a.service/job-state'))
    assert not relevant(keys, EtcdEvent('update', '/f/job/a.service/reason'))
    assert not relevant(keys, EtcdEvent('update', '/f/states/a.service/%s' % HERE))
    assert not relevant(keys, EtcdEvent('update', '/elsewhere/job/a.service/target'))


@pytest.fixture
def systemctl(tmp_path):
    log = tmp_path / 'calls'
    script = tmp_path / 'systemctl'
    script.write_text('#!/bin/sh\necho "$@" >> %s\n'
                      'if [ "$1" = list-units ]; then\n'
                      '  printf "a.service loaded active running A unit with a description\\n"\n'
                      '  printf "other.service loaded active running not asked for\\n"\n'
                      'fi\n'
                      'if [ "$1" = show ]; then\n'
                      '  printf "Id=b.service\\nLoadState=not-found\\nActiveState=inactive\\nSubState=dead\\nMainPID=0\\n"\n'
                      'fi\n' % log)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), log


def test_systemd_files_links_and_states(tmp_path, systemctl):
    script, log = systemctl
    sd = Systemd(unit_dir=str(tmp_path / 'units'), link_dir=str(tmp_path / 'system'), systemctl=script)
    sd.write('a.service', SLEEP.text)
    link = tmp_path / 'system' / 'a.service'
    assert os.readlink(str(link)) == str(tmp_path / 'units' / 'a.service')
    assert sd.local_units() == {'a.service': SLEEP.text}
    sd.write('a.service', SLEEP.text)
    assert sd.states(['a.service', 'b.service']) == {
        'a.service': ('loaded', 'active', 'running', ''),
        'b.service': ('not-found', 'inactive', 'dead', '0')}
    sd.start(['a.service'])
    sd.remove('a.service')
    assert not os.path.lexists(str(link))
    assert sd.local_units() == {}
    calls = log.read_text().splitlines()
    # one list-units for both, then show only for the unit it did not list
    assert calls[0] == 'list-units --all --full --plain --no-legend --no-pager -- a.service b.service'
    assert calls[1].startswith('show ') and calls[1].endswith('-- b.service')
    assert 'start --no-block a.service' in calls


def test_systemd_that_does_not_read_new_files_on_demand_is_reloaded_once(tmp_path):
    # like systemd before 246: a unit it looked up once stays "not found" until daemon-reload
    log = tmp_path / 'calls'
    script = tmp_path / 'systemctl'
    script.write_text('#!/bin/sh\necho "$@" >> %s\n'
                      'if [ "$1" = daemon-reload ]; then touch %s/reloaded; fi\n'
                      'if [ "$1" = start ] && [ ! -e %s/reloaded ]; then\n'
                      '  echo "Failed to start $3: Unit $3 not found." >&2; exit 5\n'
                      'fi\n' % (log, tmp_path, tmp_path))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    sd = Systemd(unit_dir=str(tmp_path / 'units'), link_dir=str(tmp_path / 'system'), systemctl=str(script))
    sd.start(['a.service'])
    assert log.read_text().splitlines() == ['start --no-block a.service', 'daemon-reload',
                                            'start --no-block a.service']
    sd.start(['b.service'])
    assert log.read_text().splitlines()[3:] == ['start --no-block b.service']
    # a unit whose file went and came back while its old process was stopping
    (tmp_path / 'reloaded').unlink()
    script.write_text('#!/bin/sh\necho "$@" >> %s\n'
                      'if [ "$1" = daemon-reload ]; then touch %s/reloaded; fi\n'
                      'if [ "$1" = start ] && [ ! -e %s/reloaded ]; then\n'
                      '  echo "Failed to start $3: Unit $3 failed to load properly, please adjust/correct and'
                      ' reload service manager: Device or resource busy" >&2; exit 1\n'
                      'fi\n' % (log, tmp_path, tmp_path))
    sd.start(['d.service'])
    assert log.read_text().splitlines()[4:] == ['start --no-block d.service', 'daemon-reload',
                                                'start --no-block d.service']
    # any other failure is an error, and no reload
    (tmp_path / 'reloaded').unlink()
    script.write_text('#!/bin/sh\necho "$@" >> %s\necho "Access denied" >&2; exit 4\n' % log)
    with pytest.raises(SystemdError, match='Access denied'):
        sd.start(['c.service'])
    assert log.read_text().splitlines()[7:] == ['start --no-block c.service']


def test_fleetctl_arguments():
    args = fleetctl.build_parser().parse_args(
        ['start', '--no-block', '--block-attempts', '3', 'kappa-test@1.service', 'kappa-test@2.service'])
    assert args.command == 'start' and args.no_block and args.block_attempts == 3
    assert args.units == ['kappa-test@1.service', 'kappa-test@2.service']
    args = fleetctl.build_parser().parse_args(['list-units', '--fields', 'unit,machine', '--no-legend', '-l'])
    assert args.fields == 'unit,machine' and args.no_legend and args.full


def test_remote_commands_are_fixed_and_refuse_bad_names():
    assert fleetctl.command_argv('status', 'web.service') == ['systemctl', 'status', '-l', '--no-pager',
                                                              'web.service']
    assert fleetctl.command_argv('journal', 'web.service', 5)[-2:] == ['-n', '5']
    with pytest.raises(Exception):
        fleetctl.command_argv('status', 'web.service; rm -rf /')
    with pytest.raises(ValueError):
        fleetctl.command_argv('shell', 'web.service')


def test_fleetctl_finds_a_local_template_for_an_instance(tmp_path):
    (tmp_path / 'apache@.service').write_text('[Service]\nExecStart=/bin/true\n')
    snap = Snapshot(revision=1)
    unit = fleetctl.find_contents(None, str(tmp_path / 'apache@1'), 'apache@1.service', snap)
    assert unit.text == '[Service]\nExecStart=/bin/true\n'
    with pytest.raises(fleetctl.Failure, match='web.service'):
        fleetctl.find_contents(None, str(tmp_path / 'web.service'), 'web.service', snap)


def test_watcher_answers_the_requests_a_resync_brings(tmp_path):
    """A watcher that skipped a backlog (catch-up) still answers fleetctl status/journal requests
    to its machine that were created meanwhile; requests to other machines are not its own."""
    import argparse
    import threading
    import time

    from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import EtcdNode
    from etcdfleet_agents import fleet

    mine = '/f/command/%s/r1' % HERE
    resync = EtcdEvent('resync', '/f/', EtcdNode('/f', dir=True, children=[
        EtcdNode('/f/command', dir=True, children=[
            EtcdNode('/f/command/%s' % HERE, dir=True, children=[EtcdNode(mine, '{"kind": "status"}')]),
            EtcdNode('/f/command/%s' % OTHER, dir=True, children=[
                EtcdNode('/f/command/%s/r2' % OTHER, '{"kind": "status"}')])]),
        EtcdNode('/f/job', dir=True)]), index=9)
    seen = {}

    class Client(object):
        endpoints = ['http://127.0.0.1:2379']

        def watch_iter(self, key, **kwargs):
            seen.update(kwargs)
            yield resync
            daemon.stopping.set()

        def close(self):
            pass

    parser = argparse.ArgumentParser()
    parser.add_argument('--once', action='store_true')
    fleet.FleetDaemon.add_arguments(parser)
    args = parser.parse_args(['--prefix', '/f/', '--machine-id', HERE, '--public-ip', '10.0.0.1',
                              '--unit-dir', str(tmp_path)])
    daemon = fleet.FleetDaemon(args=args, environ={}, client_factory=lambda **kw: Client(), systemd=FakeSystemd())
    answered = []
    done = threading.Event()
    daemon._answer = lambda key, value: (answered.append(key), done.set())
    daemon._watcher()
    assert done.wait(5)
    time.sleep(0.1)
    assert answered == [mine]
    assert seen['catch_up'] == fleet.CATCH_UP
    assert daemon.wake.is_set() and daemon.engine_wake.is_set()


@pytest.mark.parametrize('argv, message', [
    (['--machine-id', HERE, '--metadata', 'region'],
     "fleet: invalid machine metadata 'region': expected key=value pairs separated by commas\n"),
    (['--machine-id-file', '/nonexistent/machine-id'],
     'fleet: cannot read the machine ID from /nonexistent/machine-id: '),
])
def test_bad_settings_end_with_one_line_and_a_non_zero_exit(tmp_path, capsys, argv, message):
    from etcdfleet_agents import fleet

    environ = {'ETCDFLEET_ENDPOINTS': 'http://127.0.0.1:9'}
    code = fleet.main(['--once', '--unit-dir', str(tmp_path)] + argv, environ=environ)
    err = capsys.readouterr().err
    assert code == 2
    assert 'Traceback' not in err
    assert err.startswith(message) and err.count('\n') == 1
