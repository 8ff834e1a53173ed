# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet registry as stored in etcd: key layout, value formats, tables.

Keys and JSON values follow fleet 1.0 (``/_coreos.com/fleet/``), so fleet's
own ``fleetctl --driver=etcd`` can read and drive a cluster run by this
collection.  Everything here is pure: reading and writing etcd is the job of
the etcd layer; this module only says where things live and what they look
like, and how ``fleetctl`` prints them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import (
    UnitError,
    UnitFile,
    hash_from_bytes,
    hash_to_bytes,
    is_valid_hash,
    parse_unit,
    parse_unit_name,
)

__all__ = [
    'DEFAULT_PREFIX', 'ENGINE_LEASE', 'ENGINE_VERSION', 'FLEET_COMPAT_VERSION',
    'STATE_INACTIVE', 'STATE_LOADED', 'STATE_LAUNCHED', 'DESIRED_STATES',
    'RegistryFormatError', 'FleetStateError', 'FleetKeys', 'KeyInfo', 'DEFAULT_KEYS',
    'Machine', 'JobObject', 'UnitStateRecord', 'UnitRecord', 'Lease',
    'go_json', 'encode_job_object', 'decode_job_object', 'encode_unit', 'decode_unit',
    'encode_target_state', 'decode_target_state', 'encode_machine', 'decode_machine',
    'merge_metadata', 'parse_metadata', 'format_metadata', 'encode_unit_state',
    'decode_unit_state', 'encode_lease', 'decode_lease', 'encode_reason', 'decode_reason',
    'current_state', 'next_target_state',
    'format_table', 'machine_id_legend', 'machine_legend',
    'list_machines_table', 'list_units_table', 'list_unit_files_table',
    'LIST_MACHINES_FIELDS', 'LIST_UNITS_FIELDS', 'LIST_UNIT_FILES_FIELDS',
]

DEFAULT_PREFIX = '/_coreos.com/fleet/'
ENGINE_LEASE = 'engine-leader'
# Engine version fleet 1.0 writes into its lease and engine/version key.
ENGINE_VERSION = 1
# Version announced in machine objects.  fleet's fleetctl warns when a machine
# announces a newer version than its own, so this names the protocol level.
FLEET_COMPAT_VERSION = '1.0.0'

STATE_INACTIVE = 'inactive'
STATE_LOADED = 'loaded'
STATE_LAUNCHED = 'launched'
DESIRED_STATES = (STATE_INACTIVE, STATE_LOADED, STATE_LAUNCHED)

SHORT_ID_LEN = 8


class RegistryFormatError(ValueError):
    """A stored value is not in the format fleet uses."""


class FleetStateError(ValueError):
    """A requested state change is not allowed (``fleetctl`` refuses it too)."""


# --------------------------------------------------------------------------
# Key layout
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyInfo:
    """What a registry key is about (see :meth:`FleetKeys.classify`)."""

    kind: str
    unit: Optional[str] = None
    machine: Optional[str] = None
    hash: Optional[str] = None
    field: Optional[str] = None
    name: Optional[str] = None


class FleetKeys:
    """Keys of the fleet registry under a prefix (fleet's ``etcd_key_prefix``).

    ============================  ==========================================
    ``job/<unit>/object``         ``{"Name","UnitHash":[20 ints]}``
    ``job/<unit>/target-state``   ``inactive`` | ``loaded`` | ``launched``
    ``job/<unit>/target``         machine ID the engine placed the unit on
    ``job/<unit>/job-state``      machine ID running it (heartbeat, TTL)
    ``job/<unit>/reason``         why the unit cannot be placed (JSON)
    ``unit/<sha1hex>``            ``{"Raw": normalized unit text}``
    ``machines/<id>/object``      machine object (TTL)
    ``machines/<id>/metadata/*``  metadata set at run time
    ``states/<unit>/<id>``        systemd state reported by the machine (TTL)
    ``state/<unit>``              fleet's legacy state key
    ``lease/engine-leader``       ``{"MachineID","Version"}`` (TTL)
    ``engine/version``            engine version
    ============================  ==========================================

    ``reason`` is this collection's own addition; fleet ignores it.
    """

    JOB = 'job'
    UNIT = 'unit'
    MACHINES = 'machines'
    STATES = 'states'
    LEGACY_STATE = 'state'
    LEASE = 'lease'
    ENGINE = 'engine'

    JOB_OBJECT = 'object'
    JOB_TARGET_STATE = 'target-state'
    JOB_TARGET = 'target'
    JOB_HEARTBEAT = 'job-state'
    JOB_REASON = 'reason'
    JOB_FIELDS = (JOB_OBJECT, JOB_TARGET_STATE, JOB_TARGET, JOB_HEARTBEAT, JOB_REASON)

    def __init__(self, prefix=DEFAULT_PREFIX):
        prefix = '/' + prefix.strip('/') if prefix.strip('/') else ''
        self.prefix = prefix

    def _join(self, *parts):
        for part in parts:
            if not part or '/' in part or part in ('.', '..'):
                raise RegistryFormatError('invalid registry key component %r' % (part,))
        return '/'.join((self.prefix,) + parts)

    @property
    def root(self):
        """The prefix itself, for recursive reads and watches."""
        return self.prefix or '/'

    # jobs
    @property
    def job_dir(self):
        return self._join(self.JOB)

    def job_key(self, unit):
        return self._join(self.JOB, unit)

    def job_object_key(self, unit):
        return self._join(self.JOB, unit, self.JOB_OBJECT)

    def job_target_state_key(self, unit):
        return self._join(self.JOB, unit, self.JOB_TARGET_STATE)

    def job_target_key(self, unit):
        return self._join(self.JOB, unit, self.JOB_TARGET)

    def job_heartbeat_key(self, unit):
        return self._join(self.JOB, unit, self.JOB_HEARTBEAT)

    def job_reason_key(self, unit):
        return self._join(self.JOB, unit, self.JOB_REASON)

    # unit contents
    @property
    def unit_dir(self):
        return self._join(self.UNIT)

    def unit_key(self, unit_hash):
        if not is_valid_hash(unit_hash):
            raise RegistryFormatError('not a SHA1 hex digest: %r' % (unit_hash,))
        return self._join(self.UNIT, unit_hash.lower())

    # machines
    @property
    def machines_dir(self):
        return self._join(self.MACHINES)

    def machine_dir(self, machine_id):
        return self._join(self.MACHINES, machine_id)

    def machine_object_key(self, machine_id):
        return self._join(self.MACHINES, machine_id, 'object')

    def machine_metadata_dir(self, machine_id):
        return self._join(self.MACHINES, machine_id, 'metadata')

    # unit states
    @property
    def states_dir(self):
        return self._join(self.STATES)

    def unit_states_dir(self, unit):
        return self._join(self.STATES, unit)

    def unit_state_key(self, unit, machine_id):
        return self._join(self.STATES, unit, machine_id)

    def legacy_state_key(self, unit):
        return self._join(self.LEGACY_STATE, unit)

    # leases
    def lease_key(self, name=ENGINE_LEASE):
        return self._join(self.LEASE, name)

    @property
    def engine_version_key(self):
        return self._join(self.ENGINE, 'version')

    def classify(self, key):
        """Tell what ``key`` is, for watch events; ``None`` if outside the registry.

        ``kind`` is one of ``job`` (``field`` set unless the whole job
        directory), ``unit``, ``machine`` (``field`` ``object`` or
        ``metadata``, ``name`` the metadata key), ``state``, ``legacy-state``,
        ``lease``, ``engine-version``, or ``other``.
        """
        root = self.prefix + '/'
        if key == self.prefix or key.rstrip('/') == self.prefix:
            return KeyInfo('root')
        if not key.startswith(root):
            return None
        parts = [p for p in key[len(root):].split('/') if p]
        if not parts:
            return KeyInfo('root')
        top, rest = parts[0], parts[1:]
        if top == self.JOB:
            if not rest:
                return KeyInfo('job')
            if len(rest) == 1:
                return KeyInfo('job', unit=rest[0])
            if len(rest) == 2 and rest[1] in self.JOB_FIELDS:
                return KeyInfo('job', unit=rest[0], field=rest[1])
            return KeyInfo('other')
        if top == self.UNIT:
            if len(rest) == 1:
                return KeyInfo('unit', hash=rest[0])
            return KeyInfo('unit') if not rest else KeyInfo('other')
        if top == self.MACHINES:
            if not rest:
                return KeyInfo('machine')
            if len(rest) == 1:
                return KeyInfo('machine', machine=rest[0])
            if rest[1] == 'object' and len(rest) == 2:
                return KeyInfo('machine', machine=rest[0], field='object')
            if rest[1] == 'metadata' and len(rest) <= 3:
                return KeyInfo('machine', machine=rest[0], field='metadata',
                               name=rest[2] if len(rest) == 3 else None)
            return KeyInfo('other')
        if top == self.STATES:
            if not rest:
                return KeyInfo('state')
            if len(rest) == 1:
                return KeyInfo('state', unit=rest[0])
            if len(rest) == 2:
                return KeyInfo('state', unit=rest[0], machine=rest[1])
            return KeyInfo('other')
        if top == self.LEGACY_STATE:
            return KeyInfo('legacy-state', unit=rest[0] if len(rest) == 1 else None)
        if top == self.LEASE:
            return KeyInfo('lease', name=rest[0] if len(rest) == 1 else None)
        if top == self.ENGINE and rest == ['version']:
            return KeyInfo('engine-version')
        return KeyInfo('other')


DEFAULT_KEYS = FleetKeys()


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
class JobObject:
    """``job/<unit>/object``: the unit's name and the hash of its contents."""

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
        return JobObject(name, hash_from_bytes(raw_hash))
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
        return self.id[:SHORT_ID_LEN]

    def matches_id(self, value):
        """Full ID or the 8-character short ID (as fleet accepts in MachineID)."""
        return value == self.id or value == self.short_id

    def legend(self, full=False):
        return machine_legend(self, full)


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


def format_metadata(metadata):
    """Sorted ``k=v,k2=v2``, or ``-`` when empty (``fleetctl list-machines``)."""
    if not metadata:
        return '-'
    return ','.join('%s=%s' % (k, metadata[k]) for k in sorted(metadata))


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
# Engine lease and placement reasons
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Lease:
    machine_id: str
    version: int = ENGINE_VERSION


def encode_lease(machine_id, version=ENGINE_VERSION):
    return go_json({'MachineID': machine_id, 'Version': int(version)})


def decode_lease(value):
    """Lease holder; an old-style bare machine ID value reads as version 0."""
    text = _text(value)
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        data = None
    if not isinstance(data, dict):
        return Lease(machine_id=text or '', version=0)
    version = data.get('Version', 0)
    if not isinstance(version, int) or isinstance(version, bool):
        version = 0
    return Lease(machine_id=str(data.get('MachineID') or ''), version=version)


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


# --------------------------------------------------------------------------
# fleetctl tables
# --------------------------------------------------------------------------

def format_table(rows, padchar='\t', tabwidth=8, padding=1):
    """Align rows like Go's tabwriter as fleetctl configures it.

    Every cell but the last of a row is padded to its column's width plus
    ``padding``; with ``padchar='\\t'`` the width is rounded up to a multiple of
    ``tabwidth`` and filled with tabs (fleetctl's exact output), with a space
    it is filled with spaces.  Returns the text with a final newline (empty
    string for no rows).
    """
    rows = [[str(c) for c in row] for row in rows]
    if not rows:
        return ''
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell) + padding)
    lines = []
    for row in rows:
        out = []
        for i, cell in enumerate(row):
            out.append(cell)
            if i == len(row) - 1:
                break
            width = widths[i]
            if padchar == '\t':
                if tabwidth <= 0:
                    continue
                width = -(-width // tabwidth) * tabwidth
                out.append('\t' * (-(-(width - len(cell)) // tabwidth)))
            else:
                out.append(padchar * (width - len(cell)))
        lines.append(''.join(out))
    return '\n'.join(lines) + '\n'


def machine_id_legend(machine_id, full=False):
    """``7aa2819a...`` (or the full ID)."""
    if full:
        return machine_id
    return '%s...' % machine_id[:SHORT_ID_LEN]


def machine_legend(machine, full=False):
    """``7aa2819a.../172.17.8.101``; ``machine`` is a :class:`Machine` or an ID."""
    if isinstance(machine, Machine):
        legend = machine_id_legend(machine.id, full)
        if machine.ip:
            legend = '%s/%s' % (legend, machine.ip)
        return legend
    return machine_id_legend(machine, full)


def _machine_lookup(machines):
    if machines is None:
        return {}
    if isinstance(machines, Mapping):
        return dict(machines)
    return {m.id: m for m in machines}


def _fields(fields, allowed, default):
    if fields is None:
        fields = default
    if isinstance(fields, str):
        fields = fields.split(',')
    fields = list(fields)
    if not fields or fields == ['']:
        raise ValueError('Must define output format')
    for name in fields:
        if name not in allowed:
            raise ValueError('Invalid key in output format: %r (valid fields: %s)'
                             % (name, ','.join(sorted(allowed))))
    return fields


def _table(fields, rows, legend, padchar):
    table = []
    if legend:
        table.append([f.upper() for f in fields])
    table.extend(rows)
    return format_table(table, padchar=padchar)


LIST_MACHINES_FIELDS = ('machine', 'ip', 'metadata')
LIST_UNITS_FIELDS = ('unit', 'machine', 'active', 'sub')
LIST_UNIT_FILES_FIELDS = ('unit', 'hash', 'dstate', 'state', 'target')


def list_machines_table(machines, fields=None, full=False, legend=True, padchar='\t'):
    """``fleetctl list-machines``: ``MACHINE IP METADATA``, sorted by machine ID."""
    fields = _fields(fields, ('machine', 'ip', 'metadata'), LIST_MACHINES_FIELDS)
    rows = []
    for m in sorted(machines, key=lambda m: m.id):
        cells = {
            'machine': machine_id_legend(m.id, full),
            'ip': m.ip or '-',
            'metadata': format_metadata(m.metadata),
        }
        rows.append([cells[f] for f in fields])
    return _table(fields, rows, legend, padchar)


def list_units_table(states, machines=None, fields=None, full=False, legend=True, padchar='\t'):
    """``fleetctl list-units``: one row per unit and machine reporting it."""
    fields = _fields(fields, ('unit', 'machine', 'active', 'sub', 'load', 'hash'),
                     LIST_UNITS_FIELDS)
    lookup = _machine_lookup(machines)
    rows = []
    for st in sorted(states, key=lambda s: (s.name, s.machine_id)):
        if st.machine_id:
            machine = lookup.get(st.machine_id) or Machine(id=st.machine_id)
            where = machine_legend(machine, full)
        else:
            where = '-'
        unit_hash = st.unit_hash or ''
        cells = {
            'unit': st.name,
            'machine': where,
            'active': st.active_state,
            'sub': st.sub_state,
            'load': st.load_state,
            'hash': (unit_hash if full else unit_hash[:7]) or '-',
        }
        rows.append([cells[f] for f in fields])
    return _table(fields, rows, legend, padchar)


@dataclass(frozen=True)
class UnitRecord:
    """One unit as ``fleetctl list-unit-files`` and ``fleet_info`` show it."""

    name: str
    unit_hash: str
    desired_state: str = ''
    current_state: str = ''
    machine_id: str = ''
    is_global: bool = False
    description: str = ''
    reason: str = ''


def list_unit_files_table(units, machines=None, fields=None, full=False, legend=True,
                          padchar='\t', notes=True):
    """``fleetctl list-unit-files``: ``UNIT HASH DSTATE STATE TARGET``.

    TARGET is ``<id>.../<ip>``, ``global`` or ``-``.  Besides fleet's fields,
    ``reason`` shows why a unit cannot be placed.  With ``notes`` and a
    legend, those reasons are also listed under the table.
    """
    fields = _fields(fields, ('unit', 'hash', 'dstate', 'state', 'target', 'tmachine',
                              'global', 'desc', 'reason'), LIST_UNIT_FILES_FIELDS)
    lookup = _machine_lookup(machines)
    rows = []
    reasons = []
    for u in sorted(units, key=lambda u: u.name):
        if u.is_global:
            target = 'global'
        elif u.machine_id:
            target = machine_legend(lookup.get(u.machine_id) or Machine(id=u.machine_id), full)
        else:
            target = '-'
        cells = {
            'unit': u.name,
            'hash': u.unit_hash if full else u.unit_hash[:7],
            'dstate': u.desired_state or '-',
            'state': '-' if (u.is_global or not u.current_state) else u.current_state,
            'target': target,
            'tmachine': target,
            'global': 'true' if u.is_global else 'false',
            'desc': u.description or '-',
            'reason': u.reason or '-',
        }
        rows.append([cells[f] for f in fields])
        if u.reason:
            reasons.append('%s: %s' % (u.name, u.reason))
    text = _table(fields, rows, legend, padchar)
    if notes and legend and reasons and 'reason' not in fields:
        text += '\n' + ''.join(line + '\n' for line in reasons)
    return text
