# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils import fleet_registry as R
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import parse_unit

KAPPA_HASH = '559024d01378ac913e63c18dfd75f7a58d1f0bf8'
M1 = R.Machine('7aa2819a5e2a4c9cac1e3d4b87760f7f', '172.17.8.101')
M2 = R.Machine('bc1eb30f9eb844648110fec1455db88e', '172.17.8.103')
M3 = R.Machine('e1103feeae8744c9ab93dc662803ea66', '172.17.8.102')


# ------------------------------------------------------------ keys

def test_default_key_layout_matches_fleet():
    k = R.DEFAULT_KEYS
    assert k.root == '/_coreos.com/fleet'
    assert k.job_dir == '/_coreos.com/fleet/job'
    assert k.job_key('kappa-test@1.service') == '/_coreos.com/fleet/job/kappa-test@1.service'
    assert k.job_object_key('a.service') == '/_coreos.com/fleet/job/a.service/object'
    assert k.job_target_state_key('a.service') == '/_coreos.com/fleet/job/a.service/target-state'
    assert k.job_target_key('a.service') == '/_coreos.com/fleet/job/a.service/target'
    assert k.job_heartbeat_key('a.service') == '/_coreos.com/fleet/job/a.service/job-state'
    assert k.job_reason_key('a.service') == '/_coreos.com/fleet/job/a.service/reason'
    assert k.unit_dir == '/_coreos.com/fleet/unit'
    assert k.unit_key(KAPPA_HASH.upper()) == '/_coreos.com/fleet/unit/' + KAPPA_HASH
    assert k.machines_dir == '/_coreos.com/fleet/machines'
    assert k.machine_object_key(M1.id) == '/_coreos.com/fleet/machines/%s/object' % M1.id
    assert k.machine_metadata_dir(M1.id) == '/_coreos.com/fleet/machines/%s/metadata' % M1.id
    assert k.states_dir == '/_coreos.com/fleet/states'
    assert k.unit_states_dir('a.service') == '/_coreos.com/fleet/states/a.service'
    assert k.unit_state_key('a.service', M1.id) == '/_coreos.com/fleet/states/a.service/%s' % M1.id
    assert k.legacy_state_key('a.service') == '/_coreos.com/fleet/state/a.service'
    assert k.lease_key() == '/_coreos.com/fleet/lease/engine-leader'
    assert k.engine_version_key == '/_coreos.com/fleet/engine/version'


@pytest.mark.parametrize('prefix,expected', [
    ('/custom/', '/custom/job/a.service/object'),
    ('custom', '/custom/job/a.service/object'),
    ('/a/b', '/a/b/job/a.service/object'),
])
def test_custom_prefix(prefix, expected):
    assert R.FleetKeys(prefix).job_object_key('a.service') == expected


@pytest.mark.parametrize('bad', ['', 'a/b', '..', '.'])
def test_bad_key_components_refused(bad):
    with pytest.raises(R.RegistryFormatError):
        R.DEFAULT_KEYS.job_object_key(bad)


def test_unit_key_requires_a_hash():
    with pytest.raises(R.RegistryFormatError):
        R.DEFAULT_KEYS.unit_key('not-a-hash')


@pytest.mark.parametrize('key,info', [
    ('/_coreos.com/fleet/job/a.service/target', R.KeyInfo('job', unit='a.service', field='target')),
    ('/_coreos.com/fleet/job/a.service/target-state',
     R.KeyInfo('job', unit='a.service', field='target-state')),
    ('/_coreos.com/fleet/job/a.service', R.KeyInfo('job', unit='a.service')),
    ('/_coreos.com/fleet/job', R.KeyInfo('job')),
    ('/_coreos.com/fleet/unit/' + KAPPA_HASH, R.KeyInfo('unit', hash=KAPPA_HASH)),
    ('/_coreos.com/fleet/machines/abc/object', R.KeyInfo('machine', machine='abc', field='object')),
    ('/_coreos.com/fleet/machines/abc/metadata/region',
     R.KeyInfo('machine', machine='abc', field='metadata', name='region')),
    ('/_coreos.com/fleet/machines/abc', R.KeyInfo('machine', machine='abc')),
    ('/_coreos.com/fleet/states/a.service/abc', R.KeyInfo('state', unit='a.service', machine='abc')),
    ('/_coreos.com/fleet/state/a.service', R.KeyInfo('legacy-state', unit='a.service')),
    ('/_coreos.com/fleet/lease/engine-leader', R.KeyInfo('lease', name='engine-leader')),
    ('/_coreos.com/fleet/engine/version', R.KeyInfo('engine-version')),
    ('/_coreos.com/fleet/job/a.service/unknown', R.KeyInfo('other')),
    ('/_coreos.com/fleet', R.KeyInfo('root')),
    ('/_coreos.com/fleetx/job', None),
    ('/services/web', None),
])
def test_classify(key, info):
    assert R.DEFAULT_KEYS.classify(key) == info


# ------------------------------------------------------------ values

def test_job_object_is_fleet_wire_format():
    value = R.encode_job_object('kappa-test@.service', KAPPA_HASH)
    ints = list(bytes.fromhex(KAPPA_HASH))
    assert value == '{"Name":"kappa-test@.service","UnitHash":[%s]}' % ','.join(str(i) for i in ints)
    assert R.decode_job_object(value) == R.JobObject('kappa-test@.service', KAPPA_HASH)
    assert R.decode_job_object(value.encode()) == R.JobObject('kappa-test@.service', KAPPA_HASH)


@pytest.mark.parametrize('value', [
    'not json', '[]', '{"UnitHash":[1]}', '{"Name":"a.service","UnitHash":[1,2,3]}',
    '{"Name":"a.service","UnitHash":"abc"}', '{"Name":"a.service","UnitHash":[%s]}' % ','.join(['300'] * 20),
])
def test_job_object_decode_errors(value):
    with pytest.raises(R.RegistryFormatError):
        R.decode_job_object(value)


def test_unit_value_escapes_like_go_and_round_trips():
    text = "[Service]\nExecStart=/bin/sh -c 'hostname -s > index.html && echo <ok>'\n"
    value = R.encode_unit(text)
    assert value == ('{"Raw":"[Service]\\nExecStart=/bin/sh -c \'hostname -s \\u003e index.html '
                     '\\u0026\\u0026 echo \\u003cok\\u003e\'\\n"}')
    assert json.loads(value) == {'Raw': text}
    unit = R.decode_unit(value)
    assert unit.text == text and unit.hash == parse_unit(text).hash


def test_unit_value_is_normalized_and_keeps_utf8():
    value = R.encode_unit('# comment\n[Unit]\n Description = café \n')
    assert value == '{"Raw":"[Unit]\\nDescription=café\\n"}'
    with pytest.raises(R.RegistryFormatError):
        R.decode_unit('{"Raw": 5}')
    with pytest.raises(R.RegistryFormatError):
        R.decode_unit('{"Raw": "[Unit\\n"}')


def test_target_state():
    for state in ('inactive', 'loaded', 'launched'):
        assert R.decode_target_state(R.encode_target_state(state)) == state
    with pytest.raises(R.RegistryFormatError):
        R.encode_target_state('running')
    with pytest.raises(R.RegistryFormatError):
        R.decode_target_state(b'started')


def test_machine_object_wire_format():
    m = R.Machine(M1.id, '172.17.8.101', {'region': 'east', 'disk': 'ssd'})
    value = R.encode_machine(m)
    assert value == ('{"ID":"7aa2819a5e2a4c9cac1e3d4b87760f7f","PublicIP":"172.17.8.101",'
                     '"Metadata":{"disk":"ssd","region":"east"},"Capabilities":null,"Version":"1.0.0"}')
    assert R.decode_machine(value) == m


def test_machine_object_written_by_fleet_decodes():
    value = ('{"ID":"0682a8f2c4d0400f93b1a1ce6e0a2e07","PublicIP":"192.168.50.14","Metadata":{},'
             '"Capabilities":{"DISABLE_ENGINE":false,"GRPC":false},"Version":"1.0.0"}')
    m = R.decode_machine(value, dynamic_metadata={'role': 'web', 'gone': ''})
    assert m.id == '0682a8f2c4d0400f93b1a1ce6e0a2e07'
    assert m.short_id == '0682a8f2'
    assert m.ip == '192.168.50.14'
    assert m.metadata == {'role': 'web'}
    assert m.capabilities == {'DISABLE_ENGINE': False, 'GRPC': False}
    assert m.matches_id('0682a8f2') and m.matches_id(m.id) and not m.matches_id('0682a8f')
    with pytest.raises(R.RegistryFormatError):
        R.decode_machine('{"PublicIP":"1.2.3.4"}')


def test_merge_metadata_dynamic_overrides_and_deletes():
    assert R.merge_metadata({'a': '1', 'b': '2'}, {'b': '3', 'a': '', 'c': '4'}) == {'b': '3', 'c': '4'}
    assert R.merge_metadata({'a': '1'}, None) == {'a': '1'}


def test_parse_and_format_metadata():
    assert R.parse_metadata('region=east,disk=ssd') == {'region': 'east', 'disk': 'ssd'}
    assert R.parse_metadata(' platform = metal , bad, provider=rackspace, x=a=b') == \
        {'platform': 'metal', 'provider': 'rackspace', 'x': 'a=b'}
    assert R.parse_metadata('') == {} and R.parse_metadata(None) == {}
    assert R.parse_metadata({'disk': 'ssd', 'n': 3}) == {'disk': 'ssd', 'n': '3'}
    with pytest.raises(R.RegistryFormatError) as err:
        R.parse_metadata('region=east,oops', strict=True)
    assert "'oops'" in str(err.value)
    with pytest.raises(R.RegistryFormatError):
        R.parse_metadata({'a,b': 'c'}, strict=True)
    assert R.format_metadata({'region': 'east', 'disk': 'ssd'}) == 'disk=ssd,region=east'
    assert R.format_metadata({}) == '-'


def test_unit_state_wire_format():
    rec = R.UnitStateRecord('kappa-test@1.service', M1.id, 'loaded', 'active', 'running', KAPPA_HASH)
    value = R.encode_unit_state(rec)
    assert value == ('{"loadState":"loaded","activeState":"active","subState":"running",'
                     '"machineState":{"ID":"%s","PublicIP":"","Metadata":null,"Capabilities":null,'
                     '"Version":""},"unitHash":"%s"}' % (M1.id, KAPPA_HASH))
    assert R.decode_unit_state(value, 'kappa-test@1.service') == rec
    with pytest.raises(R.RegistryFormatError):
        R.encode_unit_state(R.UnitStateRecord('a.service', M1.id, 'loaded', 'active', 'running', ''))


def test_unit_state_without_machine_state_takes_key_machine():
    rec = R.decode_unit_state('{"loadState":"loaded","activeState":"failed","subState":"failed",'
                              '"machineState":null,"unitHash":"x"}', 'a.service', machine_id=M2.id)
    assert rec.machine_id == M2.id and rec.active_state == 'failed'


def test_lease_values():
    assert R.encode_lease(M1.id) == '{"MachineID":"%s","Version":1}' % M1.id
    assert R.decode_lease(R.encode_lease(M1.id, 3)) == R.Lease(M1.id, 3)
    assert R.decode_lease(M2.id) == R.Lease(M2.id, 0)


def test_reason_values():
    value = R.encode_reason('cannot be placed', {M2.id: ['b'], M1.id: ['a', 'c']})
    assert list(json.loads(value)['machines']) == [M1.id, M2.id]
    assert R.decode_reason(value) == ('cannot be placed', {M1.id: ['a', 'c'], M2.id: ['b']})


# ------------------------------------------------------------ states

@pytest.mark.parametrize('target,heartbeat,has_state,expected', [
    ('', '', False, 'inactive'),
    ('', M1.id, True, 'inactive'),
    (M1.id, '', False, 'inactive'),
    (M1.id, '', True, 'loaded'),
    (M1.id, M2.id, True, 'loaded'),
    (M1.id, M1.id, True, 'launched'),
    (M1.id, M1.id, False, 'inactive'),
])
def test_current_state(target, heartbeat, has_state, expected):
    assert R.current_state(target, heartbeat, has_state) == expected


@pytest.mark.parametrize('command,current,expected', [
    ('submit', None, 'inactive'), ('submit', 'launched', 'launched'),
    ('load', None, 'loaded'), ('load', 'launched', 'loaded'),
    ('start', None, 'launched'), ('start', 'inactive', 'launched'), ('start', 'launched', 'launched'),
    ('stop', 'launched', 'loaded'), ('stop', 'loaded', 'loaded'),
    ('unload', 'launched', 'inactive'), ('unload', 'inactive', 'inactive'),
])
def test_next_target_state(command, current, expected):
    assert R.next_target_state(command, 'hello.service', current) == expected


def test_next_target_state_refusals():
    with pytest.raises(R.FleetStateError) as err:
        R.next_target_state('stop', 'kappa-test@1.service', 'inactive')
    assert str(err.value) == 'Unable to stop unit kappa-test@1.service in state inactive'
    with pytest.raises(R.FleetStateError) as err:
        R.next_target_state('start', 'kappa-test@.service', 'inactive')
    assert 'cannot activate template' in str(err.value)
    assert R.next_target_state('submit', 'kappa-test@.service', None) == 'inactive'
    with pytest.raises(R.FleetStateError):
        R.next_target_state('stop', 'x.service', None)
    with pytest.raises(R.FleetStateError):
        R.next_target_state('restart', 'x.service', 'loaded')


# ------------------------------------------------------------ tables

def test_format_table_tabs_like_fleetctl():
    # fleetctl list-units in seed 002, byte for byte
    text = R.format_table([['UNIT', 'MACHINE', 'ACTIVE', 'SUB'],
                           ['myweb.service', '0682a8f2.../192.168.50.14', 'activating', 'start-pre']])
    assert text == ('UNIT\t\tMACHINE\t\t\t\tACTIVE\t\tSUB\n'
                    'myweb.service\t0682a8f2.../192.168.50.14\tactivating\tstart-pre\n')
    assert R.format_table([]) == ''


def test_format_table_with_spaces():
    assert R.format_table([['A', 'BB', 'C'], ['xxx', 'y', 'z']], padchar=' ') == 'A   BB C\nxxx y  z\n'


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
    assert R.list_units_table(states, machines) == (
        'UNIT\t\t\t\tMACHINE\t\t\t\tACTIVE\tSUB\n'
        'apache@1.service\t\t90c1e40c.../192.168.50.15\tactive\trunning\n'
        'apache@2.service\t\t72bda158.../192.168.50.16\tactive\trunning\n'
        'apache_discovery@1.service\t90c1e40c.../192.168.50.15\tactive\trunning\n'
        'apache_discovery@2.service\t72bda158.../192.168.50.16\tactive\trunning\n')
    assert R.list_machines_table(reversed(machines)) == (
        'MACHINE\t\tIP\t\tMETADATA\n'
        '0682a8f2...\t192.168.50.14\t-\n'
        '72bda158...\t192.168.50.16\t-\n'
        '90c1e40c...\t192.168.50.15\t-\n')


def test_tables_match_seed_000_after_tab_expansion():
    machines = [M1, M2, M3]
    assert R.list_machines_table(machines).expandtabs(8).splitlines() == [
        'MACHINE         IP              METADATA',
        '7aa2819a...     172.17.8.101    -',
        'bc1eb30f...     172.17.8.103    -',
        'e1103fee...     172.17.8.102    -',
    ]
    states = [R.UnitStateRecord('kappa-test@%d.service' % i, m.id, 'loaded', 'active', 'running', KAPPA_HASH)
              for i, m in ((1, M1), (2, M2), (3, M3))]
    assert R.list_units_table(states, machines).expandtabs(8).splitlines() == [
        'UNIT                    MACHINE                         ACTIVE  SUB',
        'kappa-test@1.service    7aa2819a.../172.17.8.101        active  running',
        'kappa-test@2.service    bc1eb30f.../172.17.8.103        active  running',
        'kappa-test@3.service    e1103fee.../172.17.8.102        active  running',
    ]
    units = [R.UnitRecord('kappa-test@.service', KAPPA_HASH, 'inactive', 'inactive')]
    assert R.list_unit_files_table(units, machines, full=True).expandtabs(8).splitlines() == [
        'UNIT                    HASH                                            DSTATE          STATE           TARGET',
        'kappa-test@.service     559024d01378ac913e63c18dfd75f7a58d1f0bf8        inactive        inactive        -',
    ]


def test_list_unit_files_targets_globals_and_reasons():
    units = [
        R.UnitRecord('kappa-test@1.service', KAPPA_HASH, 'launched', 'launched', M1.id),
        R.UnitRecord('kappa-test@4.service', KAPPA_HASH, 'launched', 'inactive',
                     reason='7aa2819a: Conflicts kappa-test@*.service with kappa-test@1.service on 7aa2819a'),
        R.UnitRecord('monitor.service', 'a' * 40, 'launched', 'launched', is_global=True),
        R.UnitRecord('lost.service', 'b' * 40, 'loaded', 'loaded', 'ffffffff00000000'),
    ]
    text = R.list_unit_files_table(units, [M1])
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
    assert len(R.list_unit_files_table(units, [M1], legend=False).splitlines()) == 4
    # the reason as a column
    with_reason = R.list_unit_files_table(units, [M1], fields='unit,reason', legend=False)
    assert 'kappa-test@4.service\t7aa2819a: Conflicts' in with_reason
    assert 'monitor.service\t\t-' in with_reason


def test_table_fields_and_full():
    text = R.list_machines_table([R.Machine(M1.id, '', {'b': '2', 'a': '1'})], fields='ip,metadata,machine',
                                 full=True, legend=False)
    assert text == '-\ta=1,b=2\t%s\n' % M1.id
    states = [R.UnitStateRecord('a.service', M1.id, 'loaded', 'active', 'running', KAPPA_HASH)]
    assert R.list_units_table(states, [M1], fields=['unit', 'hash', 'load'], legend=False) == \
        'a.service\t559024d\tloaded\n'
    assert R.list_units_table(states, [M1], fields='hash', legend=False, full=True) == KAPPA_HASH + '\n'
    # a machine no longer registered still shows by ID
    assert R.list_units_table(states, [], fields='machine', legend=False) == '7aa2819a...\n'
    with pytest.raises(ValueError) as err:
        R.list_units_table(states, [M1], fields='unit,bogus')
    assert "Invalid key in output format: 'bogus'" in str(err.value)
    with pytest.raises(ValueError):
        R.list_machines_table([], fields='')


def test_machine_legends():
    assert R.machine_legend(M1) == '7aa2819a.../172.17.8.101'
    assert R.machine_legend(M1, full=True) == M1.id + '/172.17.8.101'
    assert R.machine_legend(R.Machine(M1.id)) == '7aa2819a...'
    assert R.machine_legend(M1.id) == '7aa2819a...'
    assert M1.legend() == '7aa2819a.../172.17.8.101'
