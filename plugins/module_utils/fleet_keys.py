# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the fleet registry keeps things in etcd: fleet 1.0's key layout.

Keys follow fleet 1.0 (``/_coreos.com/fleet/``), so fleet's own ``fleetctl
--driver=etcd`` can read and drive a cluster run by this collection.  Value
formats are in ``fleet_registry``; reading and writing is ``fleet_store``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import RegistryFormatError
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import is_valid_hash

__all__ = ['DEFAULT_PREFIX', 'ENGINE_LEASE_NAME', 'KeyInfo', 'FleetKeys', 'DEFAULT_KEYS']

DEFAULT_PREFIX = '/_coreos.com/fleet/'
# Name of the engine's leadership lease under ``lease/`` (fleet 1.0's).
ENGINE_LEASE_NAME = 'engine-leader'


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

    # engine leadership
    @property
    def engine_lease_key(self):
        """``lease/engine-leader``: who holds the engine's leadership."""
        return self._join(self.LEASE, ENGINE_LEASE_NAME)

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
