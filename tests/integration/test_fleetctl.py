# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetctl's commands and output against a real etcd and in-process fleet daemons."""

from __future__ import annotations

import re

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_store import FleetStore
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import parse_unit

from etcdfleet_agents.cli import fleetctl, remote
from fleet_helpers import Node, wait_until

KAPPA = """[Unit]
Description=kappa-test

[Service]
ExecStart=/bin/sleep infinity

[X-Fleet]
X-Conflicts=kappa-test@*.service
"""
IDS = ('7aa2819a' + '1' * 24, 'bc1eb30f' + '2' * 24, 'e1103fee' + '3' * 24)


@pytest.fixture
def env(etcd_server, api, prefix, tmp_path, monkeypatch):
    fleet_prefix = prefix + '/fleet/'
    nodes = [Node(etcd_server.url, api, fleet_prefix, mid, ttl=3,
                  metadata='region=east' if i == 0 else '').start() for i, mid in enumerate(IDS)]
    store = FleetStore(EtcdClient(endpoints=[etcd_server.url], api_version=api), fleet_prefix)
    assert wait_until(lambda: len(store.snapshot().machines) == 3)
    monkeypatch.chdir(tmp_path)
    environ = {'ETCDFLEET_ENDPOINTS': etcd_server.url, 'ETCDFLEET_API_VERSION': api}

    def run(*argv):
        code = fleetctl.main(['--etcd-key-prefix', fleet_prefix] + list(argv), environ=environ)
        return code
    yield run, store, nodes, tmp_path
    for node in nodes:
        node.kill()


def test_the_seed_session(env, capsys):
    run, store, nodes, tmp = env
    (tmp / 'kappa-test@.service').write_text(KAPPA)
    assert run('submit', 'kappa-test@.service') == 0
    assert capsys.readouterr().out == 'Unit kappa-test@.service inactive\n'
    assert run('list-unit-files', '--full') == 0
    out = capsys.readouterr().out
    unit_hash = parse_unit(KAPPA).hash
    assert out.splitlines()[0].split() == ['UNIT', 'HASH', 'DSTATE', 'STATE', 'TARGET']
    assert out.splitlines()[1].split() == ['kappa-test@.service', unit_hash, 'inactive', 'inactive', '-']
    assert run('cat', 'kappa-test@.service') == 0
    assert capsys.readouterr().out == parse_unit(KAPPA).text

    # fleetctl start kappa-test@{1..3}.service: the shell expands it to three arguments
    assert run('start', 'kappa-test@1.service', 'kappa-test@2.service', 'kappa-test@3.service') == 0
    lines = capsys.readouterr().out.splitlines()
    created = [line for line in lines if line.endswith(' inactive')]
    launched = [line for line in lines if ' launched on ' in line]
    assert len(created) == 3 and len(launched) == 3
    for line in launched:
        assert re.match(r'^Unit kappa-test@[123]\.service launched on [0-9a-f]{8}\.\.\./10\.0\.0\.\d+$', line), line

    assert run('list-units') == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ['UNIT', 'MACHINE', 'ACTIVE', 'SUB']
    assert [r[0] for r in rows[1:]] == ['kappa-test@1.service', 'kappa-test@2.service', 'kappa-test@3.service']
    assert len(set(r[1] for r in rows[1:])) == 3
    assert all(r[2:] == ['active', 'running'] for r in rows[1:])

    assert run('list-machines') == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ['MACHINE', 'IP', 'METADATA']
    assert rows[1][0] == '7aa2819a...' and rows[1][2] == 'region=east'
    assert rows[2][2] == '-'

    assert run('start', '--block-attempts', '20', 'kappa-test@4') == 1
    captured = capsys.readouterr()
    assert 'Unit kappa-test@4.service inactive' in captured.out
    assert 'cannot be placed' in captured.err and 'Conflicts kappa-test@*.service' in captured.err
    assert run('list-unit-files') == 0
    out = capsys.readouterr().out
    assert re.search(r'kappa-test@4\.service\s+[0-9a-f]{7}\s+launched\s+inactive\s+-', out)
    # the reason names the unit once, in the notes and in start's error
    assert 'kappa-test@4.service: kappa-test@4.service' not in out
    assert re.search(r'^kappa-test@4\.service cannot be placed: 7aa2819a: Conflicts', out, re.M), out
    assert captured.err.count('kappa-test@4.service') == 1, captured.err

    assert run('stop', 'kappa-test@1.service', 'kappa-test@2.service', 'kappa-test@3.service') == 0
    captured = capsys.readouterr()
    assert sorted(line.split(' loaded on ')[0] for line in captured.out.splitlines()) == [
        'Unit kappa-test@%d.service' % i for i in (1, 2, 3)]
    # fleet 1.0 closes with this line on stderr (Go's list format)
    assert captured.err == 'Successfully stopped units [%s].\n' % ' '.join(
        'kappa-test@%d.service' % i for i in (1, 2, 3))
    assert run('unload', 'kappa-test@1.service', 'kappa-test@2.service', 'kappa-test@3.service') == 0
    captured = capsys.readouterr()
    # one line per unit as it reaches the state, in the order the machines got there
    assert sorted(captured.out.splitlines()) == [
        'Unit kappa-test@%d.service inactive' % i for i in (1, 2, 3)]
    assert captured.err == 'Successfully unloaded units [%s].\n' % ' '.join(
        'kappa-test@%d.service' % i for i in (1, 2, 3))
    assert run('stop', 'kappa-test@1.service') == 1
    assert capsys.readouterr().err == 'Unable to stop unit kappa-test@1.service in state inactive\n'
    assert run('destroy', 'kappa-test@.service', 'kappa-test@1.service') == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ['Destroyed kappa-test@.service', 'Destroyed kappa-test@1.service']
    assert captured.err == ''
    assert sorted(store.snapshot().jobs) == ['kappa-test@2.service', 'kappa-test@3.service', 'kappa-test@4.service']


def test_replace_and_no_block(env, capsys):
    run, store, nodes, tmp = env
    (tmp / 'web.service').write_text('[Service]\nExecStart=/bin/sleep 1\n')
    assert run('start', '--no-block', 'web.service') == 0
    assert capsys.readouterr().out == 'Unit web.service inactive\nTriggered unit web.service start\n'
    assert wait_until(lambda: store.snapshot().current_state('web.service') == 'launched')
    old = store.snapshot().jobs['web.service'].unit_hash
    (tmp / 'web.service').write_text('[Service]\nExecStart=/bin/sleep 2\n')
    assert run('start', 'web.service') == 0
    assert store.snapshot().jobs['web.service'].unit_hash == old
    warning = ('WARNING: Unit web.service in registry differs from local unit file web.service. '
               'Add --replace to override.\n')
    assert capsys.readouterr().err == warning
    assert run('submit', 'web.service') == 0
    assert capsys.readouterr().err == warning
    assert run('start', '--replace', 'web.service') == 0
    assert 'Unit web.service replaced' in capsys.readouterr().out
    assert store.snapshot().jobs['web.service'].unit_hash != old


def test_status_runs_on_the_units_machine(env, capsys, monkeypatch):
    run, store, nodes, tmp = env
    seen = []

    def fake_run(kind, unit, lines=10, timeout=30):
        seen.append((kind, unit, lines))
        return 0, '%s of %s\n' % (kind, unit)
    monkeypatch.setattr(remote, 'run_command', fake_run)
    (tmp / 'web.service').write_text('[Service]\nExecStart=/bin/sleep 1d\n')
    assert run('start', 'web.service') == 0
    capsys.readouterr()
    assert run('status', 'web.service') == 0
    assert capsys.readouterr().out == 'status of web.service\n'
    assert run('journal', '--lines', '5', 'web.service') == 0
    assert capsys.readouterr().out == 'journal of web.service\n'
    assert seen == [('status', 'web.service', 10), ('journal', 'web.service', 5)]
    assert run('status', 'nope.service') == 1
    assert 'Unit nope.service does not exist.' in capsys.readouterr().err


def test_missing_units_as_fleet_reports_them(env, capsys):
    run, store, nodes, tmp = env
    for command in ('stop', 'unload', 'destroy'):
        assert run(command, 'nope.service', 'nope@2') == 0, command
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ('', 'Units not found in registry\n'), command
    (tmp / 'web.service').write_text('[Service]\nExecStart=/bin/sleep 1d\n')
    assert run('start', 'web.service') == 0
    capsys.readouterr()
    # a unit that does not exist among others is left out
    assert run('stop', 'nope.service', 'web.service') == 0
    captured = capsys.readouterr()
    assert captured.out.startswith('Unit web.service loaded on ')
    assert captured.err == 'Successfully stopped units [web.service].\n'
    # nothing left to wait for: fleet 1.0 prints the empty list
    assert run('stop', 'web.service') == 0
    assert capsys.readouterr().err == 'Successfully stopped units [].\n'
    assert run('stop', '--no-block', 'web.service') == 0
    assert run('unload', '--no-block', 'web.service') == 0
    captured = capsys.readouterr()
    assert captured.out == 'Triggered unit web.service unload\n'
    assert captured.err == 'Successfully stopped units [].\nSuccessfully unloaded units [web.service].\n'
    assert run('destroy', 'nope.service', 'web.service') == 0
    assert capsys.readouterr() == ('Destroyed web.service\n', '')
    assert 'web.service' not in store.snapshot().jobs


def test_start_of_a_template_as_fleet(env, capsys):
    run, store, nodes, tmp = env
    (tmp / 'kappa-test@.service').write_text(KAPPA)
    # the template is submitted, then activating it is refused
    assert run('start', 'kappa-test@.service') == 1
    captured = capsys.readouterr()
    assert captured.out == 'Unit kappa-test@.service inactive\n'
    assert captured.err == 'Error starting units: cannot activate template "kappa-test@.service"\n'
    assert store.snapshot().jobs['kappa-test@.service'].target_state == 'inactive'
    assert run('load', 'kappa-test@.service') == 1
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err == 'Error loading units: cannot activate template "kappa-test@.service"\n'
    assert store.snapshot().jobs['kappa-test@.service'].target_state == 'inactive'
    # an instance still starts from it, with the template's warning when the local file differs
    (tmp / 'kappa-test@.service').write_text(KAPPA.replace('infinity', '1d'))
    assert run('start', '--no-block', 'kappa-test@1.service') == 0
    captured = capsys.readouterr()
    assert captured.out == 'Unit kappa-test@1.service inactive\nTriggered unit kappa-test@1.service start\n'
    assert captured.err == ''
    assert store.snapshot().jobs['kappa-test@1.service'].unit.text == parse_unit(KAPPA).text
    assert run('submit', 'kappa-test@1.service') == 0
    assert capsys.readouterr().err == (
        'WARNING: Unit kappa-test@1.service in registry differs from local template unit file '
        'kappa-test@1.service. Add --replace to override.\n')


def test_fleet_tls_flags(tls_server, tls_material, api, capsys):
    """fleet 1.0's --ca-file/--cert-file/--key-file reach a cluster that requires client certificates."""
    environ = {'ETCDFLEET_ENDPOINTS': tls_server.url, 'ETCDFLEET_API_VERSION': api}
    prefix = ['--etcd-key-prefix', '/it/fleetctl-tls-%s/' % api]
    tls = ['--ca-file', tls_material.ca_cert, '--cert-file', tls_material.client_cert,
           '--key-file', tls_material.client_key]

    assert fleetctl.main(prefix + ['--ca-file', tls_material.ca_cert, 'list-machines'], environ=environ) == 1
    assert 'client certificate' in capsys.readouterr().err

    assert fleetctl.main(prefix + tls + ['list-machines'], environ=environ) == 0
    assert capsys.readouterr().out.split() == ['MACHINE', 'IP', 'METADATA']
