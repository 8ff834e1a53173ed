# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetctl ssh: finding the machine, the ssh client's argument list (exec, never a shell)."""

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import Machine
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_snapshot import RegistryJob, Snapshot
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import parse_unit

from etcdfleet_agents.cli import fleetctl
from etcdfleet_agents.cli import ssh as S

M1 = Machine(id='7aa2819a' + '1' * 24, ip='172.31.23.2')
M2 = Machine(id='7ab1eb30' + '2' * 24, ip='172.31.23.3')
M3 = Machine(id='e1103fee' + '3' * 24, ip='')


def job(name, target=None, text='[Service]\nExecStart=/bin/true\n'):
    entry = RegistryJob(name)
    entry.unit = parse_unit(text)
    entry.unit_hash = entry.unit.hash
    entry.target_state = 'launched'
    entry.target = target
    return entry


@pytest.fixture
def snap():
    result = Snapshot(revision=1)
    result.machines.update({m.id: m for m in (M1, M2, M3)})
    result.jobs.update({
        'haproxy.service': job('haproxy.service', M2.id),
        'apache@1.service': job('apache@1.service', M1.id),
        'nowhere.service': job('nowhere.service'),
        'on-m3.service': job('on-m3.service', M3.id),
        'monitor.service': job('monitor.service', text='[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n'),
        # a unit named like a machine ID prefix
        '7ab1.service': job('7ab1.service', M1.id),
    })
    return result


def test_machines_by_id_prefix_and_units_by_their_machine(snap):
    assert S.find_address(snap, '7aa') == '172.31.23.2'
    assert S.find_address(snap, M2.id) == '172.31.23.3'
    assert S.find_address(snap, 'haproxy.service') == '172.31.23.3'
    assert S.find_address(snap, 'haproxy') == '172.31.23.3'
    assert S.find_address(snap, 'apache@1') == '172.31.23.2'


@pytest.mark.parametrize('target, message', [
    ('7a', 'could not find matching unit or machine'),          # two machines: not unique
    ('nope.service', 'could not find matching unit or machine'),
    ('nowhere.service', 'could not find matching unit or machine'),  # not placed
    ('monitor.service', 'could not find matching unit or machine'),  # global
    ('', 'could not find matching unit or machine'),
])
def test_targets_fleet_cannot_reach(snap, target, message):
    with pytest.raises(S.TargetNotFound, match=message):
        S.find_address(snap, target)


def test_an_argument_naming_a_machine_and_a_unit_is_refused(snap):
    with pytest.raises(S.TargetNotFound, match='ambiguous argument, both machine and unit found for `7ab1`'):
        S.find_address(snap, '7ab1')


def test_explicit_lookups_say_why(snap):
    with pytest.raises(S.TargetNotFound, match='^found more than one machine$'):
        S.machine_address(snap, '7a')
    with pytest.raises(S.TargetNotFound, match='^machine does not exist$'):
        S.machine_address(snap, 'ffff')
    with pytest.raises(S.TargetNotFound, match='^unit does not exist$'):
        S.unit_address(snap, 'nope.service')
    with pytest.raises(S.TargetNotFound, match='^global units unsupported$'):
        S.unit_address(snap, 'monitor.service')
    assert S.unit_address(snap, 'nowhere.service') == ''


def test_ssh_argv_is_a_plain_argument_list():
    assert S.ssh_argv('172.31.23.3') == ['ssh', '-p', '22', '-o', 'ConnectTimeout=10', '--', '172.31.23.3']
    argv = S.ssh_argv('172.31.23.3', user='core', port=2222, forward_agent=True,
                      strict_host_key_checking=False, timeout=0, command=['ls', '-l', '$(reboot); x'])
    assert argv == ['ssh', '-p', '2222', '-l', 'core', '-A', '-o', 'StrictHostKeyChecking=no',
                    '-o', 'UserKnownHostsFile=/dev/null', '--', '172.31.23.3', 'ls', '-l', '$(reboot); x']
    argv = S.ssh_argv('fd00::1', known_hosts_file='~/.fleetctl/known_hosts')
    assert argv[-4:] == ['-o', 'UserKnownHostsFile=~/.fleetctl/known_hosts', '--', 'fd00::1']


@pytest.mark.parametrize('kwargs', [
    {'address': ''},
    {'address': '-oProxyCommand=touch /tmp/x'},
    {'address': 'host.example; reboot'},
    {'address': '10.0.0.1', 'user': '-oProxyCommand=x'},
    {'address': '10.0.0.1', 'user': 'core root'},
    {'address': '10.0.0.1', 'user': 'root\n'},
    {'address': '10.0.0.1', 'known_hosts_file': '/tmp/known\n'},
    {'address': '10.0.0.1', 'port': 0},
    {'address': '10.0.0.1', 'port': 70000},
    {'address': '10.0.0.1', 'known_hosts_file': '/tmp/a /tmp/b'},
    {'address': '10.0.0.1', 'known_hosts_file': '/tmp/%d'},
])
def test_ssh_argv_refuses_what_ssh_would_read_as_something_else(kwargs):
    with pytest.raises(ValueError):
        S.ssh_argv(**kwargs)


class FakeStore(object):
    def __init__(self, snapshot):
        self.snap = snapshot

    def snapshot(self):
        return self.snap


def run_ssh(snap, argv, monkeypatch, capsys):
    monkeypatch.delenv('FLEETCTL_SSH_USERNAME', raising=False)
    execs = []
    monkeypatch.setattr(fleetctl.os, 'execvp', lambda path, args: execs.append((path, list(args))))
    args = fleetctl.build_parser().parse_args(argv)
    try:
        code = getattr(fleetctl.Fleetctl(args, FakeStore(snap)), args.command)()
    except fleetctl.Failure as exc:
        fleetctl.err(str(exc))
        code = 1
    return code, execs, capsys.readouterr()


def test_fleetctl_ssh_execs_the_client(snap, monkeypatch, capsys):
    code, execs, dummy = run_ssh(snap, ['ssh', 'haproxy.service', 'hostname'], monkeypatch, capsys)
    assert code == 0
    # no user given: ssh's own choice (its configuration's User, else the local user name)
    assert execs == [('ssh', ['ssh', '-p', '22', '-o', 'ConnectTimeout=10', '--', '172.31.23.3', 'hostname'])]
    code, execs, dummy = run_ssh(snap, ['--ssh-username', 'core', 'ssh', '-A', '--ssh-port', '2222', '7aa',
                                        'ls', '-l', '/'], monkeypatch, capsys)
    assert execs[0][1] == ['ssh', '-p', '2222', '-l', 'core', '-A', '-o', 'ConnectTimeout=10',
                           '--', '172.31.23.2', 'ls', '-l', '/']
    # the flags name the target; every argument is then the command ("--" as in fleet 1.0)
    code, execs, dummy = run_ssh(snap, ['ssh', '--ssh-username=core', '--unit', '7ab1.service', '--',
                                        'hostname'], monkeypatch, capsys)
    assert execs[0][1][-2:] == ['172.31.23.2', 'hostname'] and '-l' in execs[0][1]
    assert execs[0][1][execs[0][1].index('-l') + 1] == 'core'
    code, execs, dummy = run_ssh(snap, ['ssh', '--machine', '7ab1', 'uptime'], monkeypatch, capsys)
    assert execs[0][1][-2:] == ['172.31.23.3', 'uptime']


@pytest.mark.parametrize('argv, message', [
    (['ssh', 'nope.service'], 'Unable to proceed: could not find matching unit or machine\n'),
    (['ssh'], 'Unable to proceed: one machine or unit must be provided\n'),
    (['ssh', '--unit', 'nope.service'], 'Unable to proceed: unit does not exist\n'),
    (['ssh', '--machine', '7a'], 'Unable to proceed: found more than one machine\n'),
    (['ssh', '--unit', 'nowhere.service'], 'Could not determine address of machine.\n'),
    (['ssh', '--unit', 'on-m3.service'], 'Could not determine address of machine.\n'),
    (['ssh', '--unit', 'a.service', '--machine', '7aa'],
     'Both machine and unit flags provided, please specify only one.\n'),
])
def test_fleetctl_ssh_errors_as_fleet(snap, monkeypatch, capsys, argv, message):
    code, execs, captured = run_ssh(snap, argv, monkeypatch, capsys)
    assert (code, execs, captured.out, captured.err) == (1, [], '', message)


def test_fleetctl_ssh_refuses_a_hostile_registered_address(snap, monkeypatch, capsys):
    snap.machines[M1.id] = Machine(id=M1.id, ip='-oProxyCommand=touch /tmp/pwned')
    code, execs, captured = run_ssh(snap, ['ssh', 'apache@1.service'], monkeypatch, capsys)
    assert (code, execs) == (1, [])
    assert 'is not an IP address' in captured.err
