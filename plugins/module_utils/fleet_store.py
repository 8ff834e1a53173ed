# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and writing the fleet registry in etcd.

``FleetStore`` is the one implementation of fleet's registry operations over
``EtcdClient``: the ``fleet_unit`` and ``fleet_info`` modules, the agent, the
engine and ``fleetctl`` all go through it.  Key layout comes from
``fleet_keys``, value formats from ``fleet_registry``.

Reads return a :class:`~fleet_snapshot.Snapshot` (one recursive read of the
whole registry), from which every view is derived: machines, jobs with their
desired and current state, reported unit states, the engine's leader,
placement reasons.
"""

from __future__ import annotations

import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    ACTION_DELETE,
    ACTION_EXPIRE,
    EtcdCompareFailed,
    EtcdError,
    EtcdKeyError,
    EtcdKeyNotFound,
    EtcdNotAFile,
    EtcdOp,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_keys import (
    DEFAULT_PREFIX,
    ENGINE_LEASE_NAME,
    FleetKeys,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import (
    STATE_INACTIVE,
    FleetStateError,
    RegistryFormatError,
    decode_engine_lease,
    decode_machine,
    decode_unit,
    decode_unit_state,
    encode_engine_lease,
    encode_job_object,
    encode_machine,
    encode_reason,
    encode_target_state,
    encode_unit,
    encode_unit_state,
    next_target_state,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_snapshot import RegistryJob, Snapshot
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_rules import validate_unit
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import UnitFile, parse_unit, short_hash

__all__ = ['FleetStore', 'UnitExists', 'UnitNotFound', 'ContentMismatch']

# Reading how a registration ended: the change is in etcd's history already (the registration is
# gone), so the watch answers at once; a few other changes of the machine may come first.
REGISTRATION_END_WAIT = 1.0
REGISTRATION_END_EVENTS = 8


class UnitNotFound(FleetStateError):
    """The unit is not in the registry."""


class UnitExists(FleetStateError):
    """The unit is already in the registry."""


class ContentMismatch(FleetStateError):
    """The unit is in the registry with other contents (a replace is needed)."""

    def __init__(self, name, stored_hash, new_hash):
        super(ContentMismatch, self).__init__(
            'unit %s is already in the registry with other contents (stored hash %s, new hash %s); '
            'replace it to change it' % (name, short_hash(stored_hash), short_hash(new_hash)))
        self.name = name
        self.stored_hash = stored_hash
        self.new_hash = new_hash


class FleetStore(object):
    """fleet's registry over an :class:`EtcdClient`."""

    def __init__(self, client, prefix=DEFAULT_PREFIX):
        self.client = client
        self.keys = FleetKeys(prefix)
        self._parsed = {}
        # Contents this store saw referenced by a job it created, and when: creating more units
        # with the same contents shortly after needs no new check (the earlier job keeps them).
        self._referenced = {}

    # -- reading ---------------------------------------------------------------------

    def _parse_content(self, unit_hash, value):
        cached = self._parsed.get(unit_hash)
        if cached is not None and cached[0] == value:
            return cached[1]
        unit = decode_unit(value)
        if len(self._parsed) > 4096:
            self._parsed.clear()
        self._parsed[unit_hash] = (value, unit)
        return unit

    def snapshot(self):
        """Read the whole registry once and decode it into a :class:`Snapshot`."""
        try:
            root = self.client.get(self.keys.root, recursive=True)
        except EtcdKeyNotFound as exc:
            return Snapshot(revision=exc.revision if exc.revision is not None else self.client.revision('/'))
        snap = Snapshot(revision=root.revision)
        machine_objects = {}
        machine_meta = {}
        for node in root.leaves():
            info = self.keys.classify(node.key)
            if info is None:
                continue
            try:
                self._absorb(snap, info, node, machine_objects, machine_meta)
            except (RegistryFormatError, ValueError) as exc:
                snap.errors.append('%s: %s' % (node.key, exc))
        for mid, (value, index) in machine_objects.items():
            try:
                machine = decode_machine(value, machine_meta.get(mid))
            except RegistryFormatError as exc:
                snap.errors.append('machine %s: %s' % (mid, exc))
                continue
            snap.machines[machine.id] = machine
            snap.machine_index[machine.id] = index
        snap.machine_metadata = machine_meta
        for name, job in list(snap.jobs.items()):
            if job.unit_hash:
                job.unit = snap.contents.get(job.unit_hash)
                if job.unit is None:
                    job.error = 'contents %s missing from the registry' % short_hash(job.unit_hash)
        return snap

    def _absorb(self, snap, info, node, machine_objects, machine_meta):
        if info.kind == 'job' and info.unit and info.field:
            job = snap.jobs.get(info.unit)
            if job is None:
                job = snap.jobs[info.unit] = RegistryJob(info.unit)
            job.absorb(info.field, node)
        elif info.kind == 'unit' and info.hash:
            snap.contents[info.hash] = self._parse_content(info.hash, node.value)
            snap.content_index[info.hash] = node.index
        elif info.kind == 'machine' and info.machine:
            if info.field == 'object':
                machine_objects[info.machine] = (node.value, node.index)
            elif info.field == 'metadata' and info.name:
                machine_meta.setdefault(info.machine, {})[info.name] = node.value
        elif info.kind == 'state' and info.unit and info.machine:
            record = decode_unit_state(node.value, info.unit, info.machine)
            snap.states.setdefault(info.unit, {})[info.machine] = record
        elif info.kind == 'lease' and info.name == ENGINE_LEASE_NAME:
            snap.engine_leader = decode_engine_lease(node.value).machine_id or None

    def machines(self):
        return self.snapshot().machines

    def job(self, name):
        """The :class:`RegistryJob` of ``name`` (reads only that job), or ``None``."""
        try:
            node = self.client.get(self.keys.job_key(name), recursive=True)
        except EtcdKeyNotFound:
            return None
        job = RegistryJob(name)
        for leaf in node.leaves():
            info = self.keys.classify(leaf.key)
            if info is None or info.kind != 'job' or info.unit != name or not info.field:
                continue
            job.absorb(info.field, leaf)
        if not job.unit_hash:
            return None
        job.unit = self.unit_contents(job.unit_hash)
        return job

    def unit_contents(self, unit_hash):
        """The :class:`UnitFile` stored under ``unit/<hash>``, or ``None``."""
        try:
            node = self.client.get(self.keys.unit_key(unit_hash))
        except EtcdKeyNotFound:
            return None
        return self._parse_content(unit_hash, node.value)

    # -- units -----------------------------------------------------------------------

    def put_contents(self, unit):
        """Store unit contents under their hash (idempotent); return the hash."""
        key = self.keys.unit_key(unit.hash)
        value = encode_unit(unit)
        try:
            node = self.client.get(key)
            if node.value == value:
                return unit.hash
        except EtcdKeyNotFound:
            pass
        self.client.set(key, value)
        return unit.hash

    def create_unit(self, name, unit, target_state=STATE_INACTIVE):
        """Add a new unit with contents ``unit`` (text or UnitFile) in ``target_state``.

        Raises :class:`UnitExists` when a unit of that name is already there,
        and the ``units`` errors for a bad name or bad [X-Fleet] rules.
        """
        created, existing = self.create_units([(name, unit)], target_state)
        if existing:
            raise UnitExists('unit %s already exists' % name)
        return created[name]

    def create_units(self, items, target_state=STATE_INACTIVE):
        """Add new units ``[(name, contents)]`` (text or UnitFile) in ``target_state``, in a
        few round trips: every job object, then every desired state, written in batches.

        Returns ``({name: hash} of the units created, [names already in the registry]``; those
        are left as they are. Raises the ``units`` errors for a bad name or bad [X-Fleet] rules
        before writing anything.
        """
        encode_target_state(target_state)
        wanted = []
        for name, unit in items:
            if not isinstance(unit, UnitFile):
                unit = parse_unit(unit)
            validate_unit(unit, name)
            wanted.append((name, unit))
        if not wanted:
            return {}, []
        now = time.monotonic()
        stale = {}
        for dummy, unit in wanted:
            seen = self._referenced.get(unit.hash)
            if (seen is None or now - seen >= 5.0) and unit.hash not in stale:
                stale[unit.hash] = unit
        for unit in stale.values():
            self.put_contents(unit)
        results = self.client.write_each(
            [EtcdOp.set(self.keys.job_object_key(name), encode_job_object(name, unit.hash), prev_exist=False)
             for name, unit in wanted])
        created = {}
        existing = []
        for (name, unit), result in zip(wanted, results):
            if isinstance(result, EtcdCompareFailed):
                existing.append(name)
            elif isinstance(result, Exception):
                raise result
            else:
                created[name] = unit.hash
        for unit in stale.values():
            # The contents may have been collected between the two writes.
            self.put_contents(unit)
            self._referenced[unit.hash] = time.monotonic()
        for result in self.client.write_each(
                [EtcdOp.set(self.keys.job_target_state_key(name), target_state) for name in created]):
            if isinstance(result, Exception):
                raise result
        return created, existing

    def replace_unit(self, name, unit):
        """Give an existing unit new contents; its desired state stays.

        The machine running it gets the new contents and restarts it; the
        engine moves it if its rules no longer hold there.  Returns
        ``(old_hash, new_hash)``.
        """
        if not isinstance(unit, UnitFile):
            unit = parse_unit(unit)
        validate_unit(unit, name)
        job = self.job(name)
        if job is None:
            raise UnitNotFound('Unit %s does not exist.' % name)
        if job.unit_hash == unit.hash:
            return job.unit_hash, unit.hash
        self.put_contents(unit)
        self.client.set(self.keys.job_object_key(name), encode_job_object(name, unit.hash),
                        prev_index=job.object_index)
        self.put_contents(unit)
        return job.unit_hash, unit.hash

    def set_target_state(self, name, state):
        encode_target_state(state)
        self.client.set(self.keys.job_target_state_key(name), state)

    def command(self, name, command):
        """Apply ``fleetctl <command>`` (load/start/stop/unload) to an existing unit.

        Returns ``(old_state, new_state)``; raises :class:`UnitNotFound` or
        ``FleetStateError`` with fleetctl's messages.
        """
        job = self.job(name)
        if job is None:
            raise UnitNotFound('Unit %s does not exist.' % name)
        new = next_target_state(command, name, job.target_state)
        if new != job.target_state:
            self.set_target_state(name, new)
        return job.target_state, new

    def commands(self, names, command):
        """``command`` applied to many units, in order, with one registry read and one batch of
        writes. Returns ``[(name, old_state, new_state)]``; on the first unit refused
        (:class:`UnitNotFound` or ``FleetStateError``), the units before it are changed and the
        error is raised."""
        names = list(names)
        if len(names) == 1:
            old, new = self.command(names[0], command)
            return [(names[0], old, new)]
        snap = self.snapshot()
        done = []
        error = None
        for name in names:
            job = snap.jobs.get(name)
            try:
                if job is None or not job.exists:
                    raise UnitNotFound('Unit %s does not exist.' % name)
                done.append((name, job.target_state, next_target_state(command, name, job.target_state)))
            except FleetStateError as exc:
                error = exc
                break
        for result in self.client.write_each([EtcdOp.set(self.keys.job_target_state_key(name), new)
                                              for name, old, new in done if new != old]):
            if isinstance(result, Exception):
                raise result
        if error is not None:
            raise error
        return done

    def destroy_unit(self, name):
        """Remove a unit from the registry; True when it was there."""
        try:
            self.client.delete(self.keys.job_key(name), recursive=True)
        except EtcdKeyNotFound:
            return False
        return True

    # -- engine ----------------------------------------------------------------------

    def schedule(self, name, machine_id):
        """Create-only write of ``target``; False when the unit is already placed."""
        return name in self.schedule_many([(name, machine_id)])

    def schedule_many(self, moves):
        """``schedule`` of many ``(name, machine_id)`` at once; the set of names placed.

        A placement never outlives its job: a ``target`` written after the job was destroyed
        (its ``object`` gone) is deleted again at once, and the unit does not count as placed.
        """
        moves = list(moves)
        results = self.client.write_each(
            [EtcdOp.set(self.keys.job_target_key(name), mid, prev_exist=False) for name, mid in moves])
        placed = self._applied(moves, results, EtcdCompareFailed)
        if not placed:
            return placed
        objects = self.client.get_many([self.keys.job_object_key(name) for name in sorted(placed)])
        gone = [(name, mid) for name, mid in moves
                if name in placed and objects.get(self.keys.job_object_key(name)) is None]
        if gone:
            self.unschedule_many(gone)
            placed.difference_update(name for name, dummy in gone)
        return placed

    def unschedule(self, name, machine_id):
        """Remove ``target`` if it still names ``machine_id``; True when removed."""
        return name in self.unschedule_many([(name, machine_id)])

    def unschedule_many(self, moves):
        """``unschedule`` of many ``(name, machine_id)`` at once; the set of names unscheduled."""
        moves = list(moves)
        results = self.client.write_each(
            [EtcdOp.delete(self.keys.job_target_key(name), prev_value=mid) for name, mid in moves])
        return self._applied(moves, results, (EtcdCompareFailed, EtcdKeyNotFound))

    @staticmethod
    def _applied(pairs, results, expected):
        """Names of ``pairs`` whose op went through; ``expected`` errors mean no, others raise."""
        done = set()
        for (name, dummy), result in zip(pairs, results):
            if isinstance(result, expected):
                continue
            if isinstance(result, Exception):
                raise result
            done.add(name)
        return done

    def set_reason(self, name, message, machines=None):
        self.client.set(self.keys.job_reason_key(name), encode_reason(message, machines))

    def clear_reason(self, name):
        try:
            self.client.delete(self.keys.job_reason_key(name))
        except EtcdKeyNotFound:
            return False
        return True

    def unused_contents(self, snap):
        """Hashes under ``unit/`` that no job refers to."""
        used = set(job.unit_hash for job in snap.jobs.values() if job.unit_hash)
        return sorted(h for h in snap.contents if h not in used)

    def delete_contents(self, unit_hash, index=None):
        try:
            self.client.delete(self.keys.unit_key(unit_hash), prev_index=index)
        except (EtcdKeyNotFound, EtcdCompareFailed):
            return False
        return True

    def delete_orphan_job(self, name):
        """Delete the keys under ``job/<name>/`` when the job itself (its ``object``) is gone;
        each only while unchanged since read. Returns the number of keys deleted."""
        try:
            node = self.client.get(self.keys.job_key(name), recursive=True)
        except EtcdKeyNotFound:
            return 0
        leaves = list(node.leaves())
        object_key = self.keys.job_object_key(name)
        if any(leaf.key == object_key for leaf in leaves):
            return 0
        results = self.client.write_each([EtcdOp.delete(leaf.key, prev_index=leaf.index) for leaf in leaves])
        removed = len(self._applied([(leaf.key, None) for leaf in leaves], results,
                                    (EtcdCompareFailed, EtcdKeyNotFound)))
        if self.client.supports_directories:
            try:
                self.client.delete(self.keys.job_key(name), dir=True)
            except EtcdKeyError:
                pass  # gone already, or written again meanwhile (not empty)
        return removed

    def delete_states_of(self, machine_id, snap):
        """Remove the unit states a machine reported (it is gone)."""
        removed = 0
        for name, per_machine in snap.states.items():
            if machine_id in per_machine:
                try:
                    self.client.delete(self.keys.unit_state_key(name, machine_id))
                    removed += 1
                except EtcdKeyNotFound:
                    pass
        return removed

    def engine_lease(self, machine_id, ttl):
        """The lock on the engine's leadership (``lease/engine-leader``) for this machine."""
        return self.client.lock(self.keys.engine_lease_key, ttl, value=encode_engine_lease(machine_id))

    # -- machines and agents ---------------------------------------------------------

    def register_machine(self, machine, ttl):
        """Write this machine's object with a TTL (announce or update)."""
        self.client.set(self.keys.machine_object_key(machine.id), encode_machine(machine), ttl=ttl)

    def refresh_machine(self, machine, ttl, value=None):
        """Renew the machine's TTL; re-announce it when it expired or changed."""
        value = value or encode_machine(machine)
        key = self.keys.machine_object_key(machine.id)
        try:
            self.client.refresh(key, ttl, prev_value=value)
        except (EtcdKeyNotFound, EtcdCompareFailed):
            self.client.set(key, value, ttl=ttl)
            return True
        return False

    def set_machine_metadata(self, machine_id, key, value):
        """Set (``value`` a string) or remove (``None``) the run-time metadata ``key`` of a
        machine (``machines/<id>/metadata/<key>``, kept without TTL); whether it changed."""
        path = '%s/%s' % (self.keys.machine_metadata_dir(machine_id), key)
        if value is None:
            try:
                self.client.delete(path)
            except EtcdKeyNotFound:
                return False
            return True
        try:
            if self.client.get(path).value == value:
                return False
        except EtcdKeyNotFound:
            pass
        self.client.set(path, value)
        return True

    def registration_end(self, machine_id, index):
        """How the registration of ``machine_id``, last written at ``index``, ended: the change
        that removed it (an EtcdEvent: ``expire`` or ``delete``, with ``prev_node`` as it was),
        from etcd's history; ``None`` when that history is gone, shows no end or cannot be read."""
        key = self.keys.machine_object_key(machine_id)
        start = index + 1
        try:
            for dummy in range(REGISTRATION_END_EVENTS):
                # v3 sends the events of one revision together (a directory's keys deleted at once)
                events = self.client.watch_events(self.keys.machine_dir(machine_id), recursive=True, index=start,
                                                  timeout=REGISTRATION_END_WAIT)
                for event in events:
                    if event.action in (ACTION_EXPIRE, ACTION_DELETE) and \
                            (event.key == key or key.startswith(event.key.rstrip('/') + '/')):
                        return event
                last = max(event.index or 0 for event in events) if events else 0
                if not last:
                    return None
                start = last + 1
        except EtcdError:
            # history gone (compacted, cleared), nothing yet, or etcd away: the end is unknown
            return None
        return None

    def remove_machine(self, machine_id):
        try:
            self.client.delete(self.keys.machine_dir(machine_id), recursive=True)
        except EtcdKeyNotFound:
            return False
        return True

    def report_state(self, record, ttl):
        self.report_states([record], ttl)

    def report_states(self, records, ttl):
        """Write many ``states/<unit>/<machine>`` records with ``ttl`` at once."""
        for result in self.client.write_each(
                [EtcdOp.set(self.keys.unit_state_key(r.name, r.machine_id), encode_unit_state(r), ttl=ttl)
                 for r in records]):
            if isinstance(result, Exception):
                raise result

    def refresh_state(self, record, ttl):
        """Renew a state record's TTL; write it when it is gone."""
        key = self.keys.unit_state_key(record.name, record.machine_id)
        try:
            self.client.refresh(key, ttl)
        except EtcdKeyNotFound:
            self.report_state(record, ttl)

    def clear_state(self, name, machine_id):
        return name in self.clear_states([name], machine_id)

    def clear_states(self, names, machine_id):
        """Remove this machine's state records of ``names``; the set of names removed."""
        names = list(names)
        results = self.client.write_each(
            [EtcdOp.delete(self.keys.unit_state_key(name, machine_id)) for name in names])
        return self._applied([(n, None) for n in names], results, (EtcdKeyNotFound, EtcdNotAFile))

    def heartbeat(self, name, machine_id, ttl):
        """``job/<unit>/job-state``: this machine runs the unit (renewed with a TTL)."""
        key = self.keys.job_heartbeat_key(name)
        try:
            self.client.refresh(key, ttl, prev_value=machine_id)
        except (EtcdKeyNotFound, EtcdCompareFailed):
            self.client.set(key, machine_id, ttl=ttl)

    def start_heartbeats(self, names, machine_id, ttl):
        """First ``heartbeat`` of many units at once (written, whatever was there)."""
        for result in self.client.write_each(
                [EtcdOp.set(self.keys.job_heartbeat_key(name), machine_id, ttl=ttl) for name in names]):
            if isinstance(result, Exception):
                raise result

    def clear_heartbeat(self, name, machine_id):
        return name in self.clear_heartbeats([name], machine_id)

    def clear_heartbeats(self, names, machine_id):
        """Remove the heartbeats of ``names`` that still name this machine; the set removed."""
        names = list(names)
        results = self.client.write_each(
            [EtcdOp.delete(self.keys.job_heartbeat_key(name), prev_value=machine_id) for name in names])
        return self._applied([(n, None) for n in names], results, (EtcdKeyNotFound, EtcdCompareFailed))

    # -- waiting -----------------------------------------------------------------------

    def wait_for(self, names, predicate, timeout, poll=0.25, stop=None):
        """Re-read the registry until ``predicate(snapshot, name)`` holds for every name.

        Wakes on registry changes (watch) and at least every ``poll`` seconds.
        Returns ``(snapshot, pending_names)``; ``pending_names`` is empty on success.
        ``timeout`` None waits for ever.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            pending = [n for n in names if not predicate(snap, n)]
            if not pending:
                return snap, []
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return snap, pending
            if stop is not None and stop():
                return snap, pending
            self.wait_change(snap, poll if left is None else max(0.05, min(poll, left)))

    def wait_change(self, snap, timeout):
        """Block until the registry changes after ``snap`` (a watch from its revision), or
        ``timeout`` seconds pass."""
        try:
            self.client.watch(self.keys.root, recursive=True, index=(snap.revision or 0) + 1,
                              timeout=timeout)
        except Exception:  # pylint: disable=broad-except
            time.sleep(min(timeout, 0.1))
