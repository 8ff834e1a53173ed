# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet registry's values as stored in etcd: formats, states, machines.

Values are the JSON fleet 1.0 writes (Go's ``encoding/json``), so fleet's own
``fleetctl --driver=etcd`` can read and drive a cluster run by this
collection.  Everything here is pure: the key layout is ``fleet_keys``,
reading and writing etcd is ``fleet_store``'s job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_names import parse_unit_name
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import (
    UnitError,
    UnitFile,
    hash_from_bytes,
    hash_to_bytes,
    parse_unit,
)

__all__ = [
    'DRAINED_METADATA', 'RUNNING_STATES', 'ENGINE_VERSION', 'FLEET_COMPAT_VERSION', 'SHORT_ID_LEN',
    'STATE_INACTIVE', 'STATE_LOADED', 'STATE_LAUNCHED', 'DESIRED_STATES',
    'RegistryFormatError', 'FleetStateError',
    'Machine', 'JobObjectValue', 'UnitStateRecord', 'EngineLeaseHolder',
    'go_json', 'encode_job_object', 'decode_job_object', 'encode_unit', 'decode_unit',
    'encode_target_state', 'decode_target_state', 'encode_machine', 'decode_machine',
    'merge_metadata', 'parse_metadata', 'encode_unit_state',
    'decode_unit_state', 'encode_engine_lease', 'decode_engine_lease', 'encode_reason', 'decode_reason',
    'current_state', 'next_target_state', 'short_id',
]

# Engine version fleet 1.0 writes into its lease and engine/version key.
ENGINE_VERSION = 1
# Version announced in machine objects.  fleet's fleetctl warns when a machine
# announces a newer version than its own, so this names the protocol level.
FLEET_COMPAT_VERSION = '1.0.0'

STATE_INACTIVE = 'inactive'
STATE_LOADED = 'loaded'
STATE_LAUNCHED = 'launched'
DESIRED_STATES = (STATE_INACTIVE, STATE_LOADED, STATE_LAUNCHED)

# Machine IDs are shown by their first 8 characters (fleetctl's short ID).
SHORT_ID_LEN = 8
# The metadata that marks a machine drained (``drained=true``): set at run time under
# ``machines/<id>/metadata/drained`` and published by the machine's agent in its object, where
# fleetctl 1.0 shows it with the rest of the metadata. The engine places no unit there and moves
# the units it placed there away; global units stay.
DRAINED_METADATA = 'drained'
# systemd active states in which a unit still runs on its machine (or is starting or stopping)
RUNNING_STATES = ('active', 'activating', 'deactivating', 'reloading')


def short_id(machine_id):
    """``7aa2819a`` of ``7aa2819a5e2a4c9cac1e3d4b87760f7f``, as fleet shows machine IDs."""
    return machine_id[:SHORT_ID_LEN]


class RegistryFormatError(ValueError):
    """A stored value is not in the format fleet uses."""


class FleetStateError(ValueError):
    """A requested state change is not allowed (``fleetctl`` refuses it too)."""


# --------------------------------------------------------------------------
# JSON as fleet (Go's encoding/json) writes it
# --------------------------------------------------------------------------

_GO_ESCAPES = {'<': '\\u003c', '>': '\\u003e', '&': '\\u0026',
               '\u2028': '\\u2028', '\u2029': '\\u2029'}


def go_json(obj):
    """Serialize like Go's ``json.Marshal``: compact, UTF-8, HTML characters escaped.

    Pass dicts in the field order Go would use (struct field order; map keys
    are sorted by the caller or by :func:`_sorted_map`).
    """
    text = json.dumps(obj, separators=(',', ':'), ensure_ascii=False)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def _sorted_map(mapping):
    if mapping is None:
        return None
    return {k: mapping[k] for k in sorted(mapping)}


def _loads(value, what):
    if isinstance(value, bytes):
        value = value.decode('utf-8', errors='replace')
    try:
        data = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise RegistryFormatError('%s is not valid JSON: %s' % (what, exc))
    if not isinstance(data, dict):
        raise RegistryFormatError('%s must be a JSON object, got %s' % (what, type(data).__name__))
    return data


def _text(value):
    if isinstance(value, bytes):
        return value.decode('utf-8', errors='replace')
    return value


# --------------------------------------------------------------------------
# Jobs and unit contents
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class JobObjectValue:
    """The decoded ``job/<unit>/object`` value: the unit's name and the hash of its contents."""

    name: str
    unit_hash: str


def encode_job_object(name, unit_hash):
    try:
        ints = hash_to_bytes(unit_hash)
    except UnitError as exc:
        raise RegistryFormatError(str(exc))
    return go_json({'Name': name, 'UnitHash': ints})


def decode_job_object(value):
    data = _loads(value, 'job object')
    name = data.get('Name')
    if not isinstance(name, str) or not name:
        raise RegistryFormatError('job object has no "Name": %r' % (_text(value),))
    raw_hash = data.get('UnitHash')
    if not isinstance(raw_hash, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                 for i in raw_hash):
        raise RegistryFormatError('job object "UnitHash" must be a list of 20 integers')
    try:
        return JobObjectValue(name, hash_from_bytes(raw_hash))
    except UnitError as exc:
        raise RegistryFormatError('job object of %s: %s' % (name, exc))


def encode_unit(unit):
    """``unit/<hash>`` value for a :class:`UnitFile` (or unit text, normalized first)."""
    if not isinstance(unit, UnitFile):
        unit = parse_unit(unit)
    return go_json({'Raw': unit.text})


def decode_unit(value):
    """The :class:`UnitFile` stored in a ``unit/<hash>`` value."""
    data = _loads(value, 'unit contents')
    raw = data.get('Raw')
    if not isinstance(raw, str):
        raise RegistryFormatError('unit contents have no "Raw" text')
    try:
        return parse_unit(raw)
    except UnitError as exc:
        raise RegistryFormatError('stored unit cannot be parsed: %s' % exc)


def encode_target_state(state):
    if state not in DESIRED_STATES:
        raise RegistryFormatError('invalid target state %r (expected one of %s)'
                                  % (state, ', '.join(DESIRED_STATES)))
    return state


def decode_target_state(value):
    state = _text(value)
    if state not in DESIRED_STATES:
        raise RegistryFormatError('invalid target state %r (expected one of %s)'
                                  % (state, ', '.join(DESIRED_STATES)))
    return state


# --------------------------------------------------------------------------
# Machines
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Machine:
    """A machine as registered under ``machines/<id>/object``."""

    id: str
    ip: str = ''
    metadata: Mapping[str, str] = field(default_factory=dict)
    version: str = FLEET_COMPAT_VERSION
    capabilities: Optional[Mapping[str, bool]] = None

    @property
    def short_id(self):
        return short_id(self.id)

    def matches_id(self, value):
        """Full ID or the 8-character short ID (as fleet accepts in MachineID)."""
        return value == self.id or value == self.short_id

    @property
    def drained(self):
        """Whether the machine takes no placed unit (metadata ``drained=true``)."""
        return (self.metadata or {}).get(DRAINED_METADATA) == 'true'


def encode_machine(machine):
    """``machines/<id>/object`` value, as fleet's MachineState."""
    if not machine.id:
        raise RegistryFormatError('machine ID cannot be empty')
    caps = None
    if machine.capabilities is not None:
        caps = _sorted_map({k: bool(v) for k, v in machine.capabilities.items()})
    return go_json({
        'ID': machine.id,
        'PublicIP': machine.ip or '',
        'Metadata': _sorted_map(dict(machine.metadata or {})),
        'Capabilities': caps,
        'Version': machine.version or '',
    })


def merge_metadata(static, dynamic):
    """Run-time metadata (``machines/<id>/metadata/<key>``) over the object's own.

    An empty run-time value deletes the key, as in fleet.
    """
    result = dict(static or {})
    for key, value in (dynamic or {}).items():
        if value == '':
            result.pop(key, None)
        else:
            result[key] = value
    return result


def decode_machine(value, dynamic_metadata=None):
    data = _loads(value, 'machine object')
    mid = data.get('ID')
    if not isinstance(mid, str) or not mid:
        raise RegistryFormatError('machine object has no "ID"')
    metadata = data.get('Metadata') or {}
    if not isinstance(metadata, dict):
        raise RegistryFormatError('machine %s: "Metadata" must be an object' % mid)
    metadata = {str(k): str(v) for k, v in metadata.items()}
    caps = data.get('Capabilities')
    if caps is not None and not isinstance(caps, dict):
        caps = None
    return Machine(
        id=mid,
        ip=data.get('PublicIP') or '',
        metadata=merge_metadata(metadata, dynamic_metadata),
        version=data.get('Version') or '',
        capabilities=caps,
    )


def parse_metadata(text, strict=False):
    """``'region=east,disk=ssd'`` -> ``{'region': 'east', 'disk': 'ssd'}``.

    A dict is accepted as is (values turned into strings).  Pairs without
    ``=`` are skipped like fleet does, or refused when ``strict``.
    """
    if text is None:
        return {}
    if isinstance(text, Mapping):
        result = {}
        for key, value in text.items():
            key, value = str(key).strip(), str(value).strip()
            if strict and (not key or not value or ',' in key + value or '=' in key):
                raise RegistryFormatError('invalid machine metadata %s=%s' % (key, value))
            result[key] = value
        return result
    result = {}
    for pair in str(text).split(','):
        if not pair.strip():
            continue
        key, sep, value = pair.partition('=')
        key, value = key.strip(), value.strip()
        if not sep or not key or (strict and not value):
            if strict:
                raise RegistryFormatError('invalid machine metadata %r: expected key=value pairs '
                                          'separated by commas' % pair.strip())
            continue
        result[key] = value
    return result


# --------------------------------------------------------------------------
# Unit states reported by machines
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitStateRecord:
    """``states/<unit>/<machine>``: systemd's view of a unit on one machine."""

    name: str
    machine_id: str
    load_state: str
    active_state: str
    sub_state: str
    unit_hash: str


def encode_unit_state(record):
    if not record.unit_hash:
        raise RegistryFormatError('unit state of %s needs the unit hash' % record.name)
    machine_state = None
    if record.machine_id:
        machine_state = {'ID': record.machine_id, 'PublicIP': '', 'Metadata': None,
                         'Capabilities': None, 'Version': ''}
    return go_json({
        'loadState': record.load_state,
        'activeState': record.active_state,
        'subState': record.sub_state,
        'machineState': machine_state,
        'unitHash': record.unit_hash,
    })


def decode_unit_state(value, name, machine_id=None):
    """Decode a state value; ``name`` and ``machine_id`` come from its key."""
    data = _loads(value, 'unit state of %s' % name)
    machine_state = data.get('machineState')
    mid = ''
    if isinstance(machine_state, dict):
        mid = machine_state.get('ID') or ''
    return UnitStateRecord(
        name=name,
        machine_id=mid or machine_id or '',
        load_state=data.get('loadState') or '',
        active_state=data.get('activeState') or '',
        sub_state=data.get('subState') or '',
        unit_hash=data.get('unitHash') or '',
    )


# --------------------------------------------------------------------------
# Engine leadership and placement reasons
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class EngineLeaseHolder:
    """The ``lease/engine-leader`` value: the machine whose engine leads, and its version."""

    machine_id: str
    version: int = ENGINE_VERSION


def encode_engine_lease(machine_id, version=ENGINE_VERSION):
    return go_json({'MachineID': machine_id, 'Version': int(version)})


def decode_engine_lease(value):
    """The engine leader; an old-style bare machine ID value reads as version 0."""
    text = _text(value)
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        data = None
    if not isinstance(data, dict):
        return EngineLeaseHolder(machine_id=text or '', version=0)
    version = data.get('Version', 0)
    if not isinstance(version, int) or isinstance(version, bool):
        version = 0
    return EngineLeaseHolder(machine_id=str(data.get('MachineID') or ''), version=version)


def encode_reason(message, machines=None):
    """``job/<unit>/reason``: a summary and, per machine ID, what excluded it."""
    per_machine = {}
    for mid, reasons in sorted((machines or {}).items()):
        per_machine[mid] = [str(r) for r in reasons]
    return go_json({'message': message, 'machines': per_machine})


def decode_reason(value):
    """``(message, {machine_id: [reasons]})``."""
    data = _loads(value, 'placement reason')
    machines = data.get('machines') or {}
    if not isinstance(machines, dict):
        machines = {}
    return (str(data.get('message') or ''),
            {str(k): [str(r) for r in (v or [])] for k, v in machines.items()})


# --------------------------------------------------------------------------
# States
# --------------------------------------------------------------------------

def current_state(target_machine, heartbeat_machine, has_state_record):
    """The STATE column, derived the way fleet derives it.

    ``inactive`` without a target machine or without a state record from it;
    ``loaded`` with one; ``launched`` when the target's heartbeat is current.
    """
    if not target_machine or not has_state_record:
        return STATE_INACTIVE
    if heartbeat_machine != target_machine:
        return STATE_LOADED
    return STATE_LAUNCHED


_COMMAND_STATES = {
    'submit': STATE_INACTIVE,
    'load': STATE_LOADED,
    'start': STATE_LAUNCHED,
    'stop': STATE_LOADED,
    'unload': STATE_INACTIVE,
}


def next_target_state(command, name, current):
    """Desired state after ``fleetctl <command>`` on a unit whose desired state is ``current``.

    ``current`` is ``None`` for a unit not yet in the registry.  ``submit``
    never changes an existing unit's state; ``stop`` of an inactive unit and
    loading or starting a template are refused with fleet's messages.
    """
    if command not in _COMMAND_STATES:
        raise FleetStateError('unknown command %r (expected one of %s)'
                              % (command, ', '.join(sorted(_COMMAND_STATES))))
    if current is not None and current not in DESIRED_STATES:
        raise FleetStateError('unit %s has an invalid desired state %r' % (name, current))
    if command == 'submit':
        return current or STATE_INACTIVE
    if command == 'stop':
        if current is None:
            raise FleetStateError('Unit %s does not exist.' % name)
        if current == STATE_INACTIVE:
            raise FleetStateError('Unable to stop unit %s in state %s' % (name, current))
        return STATE_LOADED
    if command == 'unload':
        if current is None:
            raise FleetStateError('Unit %s does not exist.' % name)
        return STATE_INACTIVE
    info = parse_unit_name(name)
    if info is not None and info.is_template:
        raise FleetStateError('cannot activate template %r: start an instance such as %s'
                              % (name, '%s@1%s' % (info.prefix, info.suffix)))
    return _COMMAND_STATES[command]
