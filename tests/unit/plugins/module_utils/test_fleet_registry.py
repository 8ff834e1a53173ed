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


# ------------------------------------------------------------ values

def test_job_object_is_fleet_wire_format():
    value = R.encode_job_object('kappa-test@.service', KAPPA_HASH)
    ints = list(bytes.fromhex(KAPPA_HASH))
    assert value == '{"Name":"kappa-test@.service","UnitHash":[%s]}' % ','.join(str(i) for i in ints)
    assert R.decode_job_object(value) == R.JobObjectValue('kappa-test@.service', KAPPA_HASH)
    assert R.decode_job_object(value.encode()) == R.JobObjectValue('kappa-test@.service', KAPPA_HASH)


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


def test_parse_metadata():
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


def test_engine_lease_values():
    assert R.encode_engine_lease(M1.id) == '{"MachineID":"%s","Version":1}' % M1.id
    assert R.decode_engine_lease(R.encode_engine_lease(M1.id, 3)) == R.EngineLeaseHolder(M1.id, 3)
    assert R.decode_engine_lease(M2.id) == R.EngineLeaseHolder(M2.id, 0)


def test_short_id_is_fleets_eight_characters():
    assert R.short_id(M1.id) == '7aa2819a'
    assert M1.short_id == '7aa2819a' and M1.matches_id('7aa2819a') and M1.matches_id(M1.id)


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
