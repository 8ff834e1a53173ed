# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetctl's tables, byte for byte as fleet's own fleetctl prints them."""

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils import fleet_registry as R

from etcdfleet_agents.cli import tables as T

KAPPA_HASH = '559024d01378ac913e63c18dfd75f7a58d1f0bf8'
M1 = R.Machine('7aa2819a5e2a4c9cac1e3d4b87760f7f', '172.17.8.101')
M2 = R.Machine('bc1eb30f9eb844648110fec1455db88e', '172.17.8.103')
M3 = R.Machine('e1103feeae8744c9ab93dc662803ea66', '172.17.8.102')


def test_format_table_tabs_like_fleetctl():
    # fleetctl list-units in seed 002, byte for byte
    text = T.format_table([['UNIT', 'MACHINE', 'ACTIVE', 'SUB'],
                           ['myweb.service', '0682a8f2.../192.168.50.14', 'activating', 'start-pre']])
    assert text == ('UNIT\t\tMACHINE\t\t\t\tACTIVE\t\tSUB\n'
                    'myweb.service\t0682a8f2.../192.168.50.14\tactivating\tstart-pre\n')
    assert T.format_table([]) == ''


def test_format_table_with_spaces():
    assert T.format_table([['A', 'BB', 'C'], ['xxx', 'y', 'z']], padchar=' ') == 'A   BB C\nxxx y  z\n'


def test_list_units_matches_seed_002():
    machines = [R.Machine('0682a8f2c4d0400f93b1a1ce6e0a2e07', '192.168.50.14'),
                R.Machine('72bda15890c14ee89b15214c1b87d71f', '192.168.50.16'),
                R.Machine('90c1e40ca1e749abbc23fa8b2391ce27', '192.168.50.15')]
    states = [
        R.UnitStateRecord('apache_discovery@1.service', machines[2].id, 'loaded', 'active', 'running', KAPPA_HASH),
        R.UnitStateRecord('apache@2.service', machines[1].id, 'loaded', 'active', 'running', KAPPA_HASH),
        R.UnitStateRecord('apache@1.service', machines[2].id, 'loaded', 'active', 'running', KAPPA_HASH),
        R.UnitStateRecord('apache_discovery@2.service', machines[1].id, 'loaded', 'active', 'running', KAPPA_HASH),
    ]
    assert T.list_units_table(states, machines) == (
        'UNIT\t\t\t\tMACHINE\t\t\t\tACTIVE\tSUB\n'
        'apache@1.service\t\t90c1e40c.../192.168.50.15\tactive\trunning\n'
        'apache@2.service\t\t72bda158.../192.168.50.16\tactive\trunning\n'
        'apache_discovery@1.service\t90c1e40c.../192.168.50.15\tactive\trunning\n'
        'apache_discovery@2.service\t72bda158.../192.168.50.16\tactive\trunning\n')
    assert T.list_machines_table(reversed(machines)) == (
        'MACHINE\t\tIP\t\tMETADATA\n'
        '0682a8f2...\t192.168.50.14\t-\n'
        '72bda158...\t192.168.50.16\t-\n'
        '90c1e40c...\t192.168.50.15\t-\n')


def test_tables_match_seed_000_after_tab_expansion():
    machines = [M1, M2, M3]
    assert T.list_machines_table(machines).expandtabs(8).splitlines() == [
        'MACHINE         IP              METADATA',
        '7aa2819a...     172.17.8.101    -',
        'bc1eb30f...     172.17.8.103    -',
        'e1103fee...     172.17.8.102    -',
    ]
    states = [R.UnitStateRecord('kappa-test@%d.service' % i, m.id, 'loaded', 'active', 'running', KAPPA_HASH)
              for i, m in ((1, M1), (2, M2), (3, M3))]
    assert T.list_units_table(states, machines).expandtabs(8).splitlines() == [
        'UNIT                    MACHINE                         ACTIVE  SUB',
        'kappa-test@1.service    7aa2819a.../172.17.8.101        active  running',
        'kappa-test@2.service    bc1eb30f.../172.17.8.103        active  running',
        'kappa-test@3.service    e1103fee.../172.17.8.102        active  running',
    ]
    units = [T.UnitFileRow('kappa-test@.service', KAPPA_HASH, 'inactive', 'inactive')]
    assert T.list_unit_files_table(units, machines, full=True).expandtabs(8).splitlines() == [
        'UNIT                    HASH                                            DSTATE          STATE           TARGET',
        'kappa-test@.service     559024d01378ac913e63c18dfd75f7a58d1f0bf8        inactive        inactive        -',
    ]


def test_list_unit_files_targets_globals_and_reasons():
    units = [
        T.UnitFileRow('kappa-test@1.service', KAPPA_HASH, 'launched', 'launched', M1.id),
        T.UnitFileRow('kappa-test@4.service', KAPPA_HASH, 'launched', 'inactive',
                      reason='7aa2819a: Conflicts kappa-test@*.service with kappa-test@1.service on 7aa2819a'),
        T.UnitFileRow('monitor.service', 'a' * 40, 'launched', 'launched', is_global=True),
        T.UnitFileRow('lost.service', 'b' * 40, 'loaded', 'loaded', 'ffffffff00000000'),
    ]
    text = T.list_unit_files_table(units, [M1])
    lines = text.splitlines()
    assert lines[0].split('\t')[0] == 'UNIT'
    rows = {line.split('\t')[0]: [c for c in line.split('\t') if c] for line in lines[1:5]}
    assert rows['kappa-test@1.service'] == ['kappa-test@1.service', '559024d', 'launched', 'launched',
                                            '7aa2819a.../172.17.8.101']
    assert rows['kappa-test@4.service'] == ['kappa-test@4.service', '559024d', 'launched', 'inactive', '-']
    assert rows['monitor.service'] == ['monitor.service', 'aaaaaaa', 'launched', '-', 'global']
    assert rows['lost.service'][-1] == 'ffffffff...'
    assert lines[5] == ''
    assert lines[6] == ('kappa-test@4.service: 7aa2819a: Conflicts kappa-test@*.service with '
                        'kappa-test@1.service on 7aa2819a')
    # scripts (--no-legend) get only rows
    assert len(T.list_unit_files_table(units, [M1], legend=False).splitlines()) == 4
    # the reason as a column
    with_reason = T.list_unit_files_table(units, [M1], fields='unit,reason', legend=False)
    assert 'kappa-test@4.service\t7aa2819a: Conflicts' in with_reason
    assert 'monitor.service\t\t-' in with_reason


def test_table_fields_and_full():
    text = T.list_machines_table([R.Machine(M1.id, '', {'b': '2', 'a': '1'})], fields='ip,metadata,machine',
                                 full=True, legend=False)
    assert text == '-\ta=1,b=2\t%s\n' % M1.id
    states = [R.UnitStateRecord('a.service', M1.id, 'loaded', 'active', 'running', KAPPA_HASH)]
    assert T.list_units_table(states, [M1], fields=['unit', 'hash', 'load'], legend=False) == \
        'a.service\t559024d\tloaded\n'
    assert T.list_units_table(states, [M1], fields='hash', legend=False, full=True) == KAPPA_HASH + '\n'
    # a machine no longer registered still shows by ID
    assert T.list_units_table(states, [], fields='machine', legend=False) == '7aa2819a...\n'
    with pytest.raises(ValueError) as err:
        T.list_units_table(states, [M1], fields='unit,bogus')
    assert "Invalid key in output format: 'bogus'" in str(err.value)
    with pytest.raises(ValueError):
        T.list_machines_table([], fields='')


def test_machine_legends():
    assert T.machine_legend(M1) == '7aa2819a.../172.17.8.101'
    assert T.machine_legend(M1, full=True) == M1.id + '/172.17.8.101'
    assert T.machine_legend(R.Machine(M1.id)) == '7aa2819a...'
    assert T.machine_legend(M1.id) == '7aa2819a...'


def test_format_metadata():
    assert T.format_metadata({'region': 'east', 'disk': 'ssd'}) == 'disk=ssd,region=east'
    assert T.format_metadata({}) == '-'
