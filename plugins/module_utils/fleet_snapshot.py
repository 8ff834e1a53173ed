# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet registry at one revision, as one recursive read decodes it.

A :class:`Snapshot` holds the machines, the jobs (:class:`RegistryJob`: desired
state, target, heartbeat, reason and contents), the reported unit states and
the engine's leader; every view (current state, unit info) is derived from it.
``fleet_store`` reads it; the modules, the agent, the engine and ``fleetctl``
look at it.
"""

from __future__ import annotations

from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_keys import FleetKeys
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import (
    current_state,
    decode_job_object,
    decode_reason,
    decode_target_state,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_names import parse_unit_name
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_rules import fleet_options
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import short_hash

__all__ = ['RegistryJob', 'Snapshot']


class RegistryJob(object):
    """One job as the registry holds it: ``job/<unit>/*`` (desired state, target, heartbeat,
    reason) plus its contents when available."""

    __slots__ = ('name', 'unit_hash', 'target_state', 'target', 'heartbeat', 'reason',
                 'reason_machines', 'unit', 'object_index', 'error')

    def __init__(self, name):
        self.name = name
        self.unit_hash = ''
        self.target_state = None
        self.target = None
        self.heartbeat = None
        self.reason = ''
        self.reason_machines = {}
        self.unit = None
        self.object_index = None
        self.error = None

    @property
    def exists(self):
        return bool(self.unit_hash)

    @property
    def options(self):
        if self.unit is None:
            return None
        return fleet_options(self.unit, self.name)

    @property
    def is_global(self):
        opts = self.options
        return bool(opts and opts.is_global)

    @property
    def is_template(self):
        info = parse_unit_name(self.name)
        return info is not None and info.is_template

    def absorb(self, field, node):
        """Take in the value of ``job/<unit>/<field>`` from ``node``."""
        if field == FleetKeys.JOB_OBJECT:
            self.unit_hash = decode_job_object(node.value).unit_hash
            self.object_index = node.index
        elif field == FleetKeys.JOB_TARGET_STATE:
            self.target_state = decode_target_state(node.value)
        elif field == FleetKeys.JOB_TARGET:
            self.target = node.value or None
        elif field == FleetKeys.JOB_HEARTBEAT:
            self.heartbeat = node.value or None
        elif field == FleetKeys.JOB_REASON:
            self.reason, self.reason_machines = decode_reason(node.value)

    def __repr__(self):
        return 'RegistryJob(%r, hash=%s, target_state=%r, target=%r)' % (
            self.name, short_hash(self.unit_hash), self.target_state, self.target)


class Snapshot(object):
    """The registry at one revision.

    ``machines``: ``{id: Machine}``; ``jobs``: ``{name: RegistryJob}``;
    ``contents``: ``{hash: UnitFile}`` (unparseable ones left out and listed
    in ``errors``); ``states``: ``{unit: {machine_id: UnitStateRecord}}``;
    ``machine_metadata``: ``{id: {key: value}}``, the metadata set at run time (already merged
    into ``machines``); ``machine_index``: ``{id: index}``, where each registration was last written;
    ``engine_leader``: the machine ID holding the engine's leadership, or ``None``;
    ``revision``: where to watch from (``revision + 1``).
    """

    def __init__(self, revision=None):
        self.revision = revision
        self.machines = {}
        self.machine_metadata = {}
        self.machine_index = {}
        self.jobs = {}
        self.contents = {}
        self.content_index = {}
        self.states = {}
        self.engine_leader = None
        self.errors = []

    # -- derived views -------------------------------------------------------------

    def current_state(self, name):
        job = self.jobs.get(name)
        if job is None:
            return None
        has_record = bool(job.target and job.target in self.states.get(name, {}))
        return current_state(job.target, job.heartbeat, has_record)

    def state_records(self):
        """Every ``states/<unit>/<machine>`` record, sorted by unit and machine."""
        out = []
        for name in sorted(self.states):
            for mid in sorted(self.states[name]):
                out.append(self.states[name][mid])
        return out

    def global_machines(self, name):
        """Machines reporting a global unit."""
        return sorted(self.states.get(name, {}))

    def unit_info(self, name):
        """A plain dict describing one unit (for modules and ``fleetctl``)."""
        job = self.jobs.get(name)
        if job is None or not job.exists:
            return None
        machine = self.machines.get(job.target) if job.target else None
        record = self.states.get(name, {}).get(job.target) if job.target else None
        info = dict(
            name=name,
            hash=job.unit_hash,
            desired_state=job.target_state,
            current_state=self.current_state(name),
            machine_id=job.target,
            machine_ip=machine.ip if machine is not None else None,
            machine=_legend(job.target, machine),
            is_global=job.is_global,
            load_state=record.load_state if record else None,
            active_state=record.active_state if record else None,
            sub_state=record.sub_state if record else None,
            reason=job.reason or None,
            reason_machines=dict(job.reason_machines),
            description=job.unit.description if job.unit is not None else '',
        )
        if job.is_global:
            info['machines'] = [
                dict(machine_id=mid, active_state=rec.active_state, sub_state=rec.sub_state,
                     load_state=rec.load_state)
                for mid, rec in sorted(self.states.get(name, {}).items())]
        return info


def _legend(machine_id, machine):
    if not machine_id:
        return None
    if machine is not None and machine.ip:
        return '%s/%s' % (machine_id, machine.ip)
    return machine_id
