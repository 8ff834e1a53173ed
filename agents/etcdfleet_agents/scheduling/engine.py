# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet engine: places units on machines.

One engine in the cluster acts at a time: the one whose machine holds the engine's
leadership (``lease/engine-leader``, taken and renewed by the ``fleet`` daemon).  Each reconcile pass reads a
registry snapshot, asks ``placement.plan`` what to change and carries it
out: unschedules units whose machine is gone or whose rules no longer hold
(compare-and-delete of ``target``), places unscheduled units (create-only write
of ``target``; each kind of write goes out in batches), records why a unit cannot be placed (``job/<unit>/reason``),
forgets the unit states of vanished machines and collects unit contents no job
refers to any more, and job keys left without their job (``job/<unit>/*`` without ``object``).
"""

import logging
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import short_id
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import short_hash

from etcdfleet_agents.scheduling.placement import PENDING_SUMMARY, placement_inputs, plan


class Engine(object):
    """Reconciles placements; ``reconcile(snapshot)`` is one pass."""

    def __init__(self, store, machine_id='', gc_grace=30.0, log=None, clock=time.monotonic):
        self.store = store
        self.machine_id = machine_id
        self.gc_grace = float(gc_grace)
        self.log = log or logging.getLogger('fleet.engine')
        self.clock = clock
        self._unused_since = {}
        self._orphan_since = {}

    def reconcile(self, snap):
        """One pass over ``snap``; returns the number of writes made."""
        writes = 0
        jobs = placement_inputs(snap)
        result = plan(snap.machines, jobs)
        if result.unschedule:
            removed = self.store.unschedule_many((m.unit, m.machine_id) for m in result.unschedule)
            for move in result.unschedule:
                if move.unit in removed:
                    writes += 1
                    self.log.info('unscheduled %s from %s: %s', move.unit, short_id(move.machine_id), move.reason)
        if result.schedule:
            placed = self.store.schedule_many((m.unit, m.machine_id) for m in result.schedule)
            for move in result.schedule:
                if move.unit in placed:
                    writes += 1
                    self.log.info('scheduled %s to %s', move.unit, short_id(move.machine_id))
                else:
                    self.log.info('%s was placed by someone else meanwhile', move.unit)
        for name, decision in sorted(result.unplaceable.items()):
            if decision.summary == PENDING_SUMMARY:
                continue
            entry = snap.jobs.get(name)
            message = decision.message
            if entry is not None and entry.reason == message and \
                    entry.reason_machines == decision.reason_texts():
                continue
            self.store.set_reason(name, message, decision.reason_texts())
            writes += 1
            self.log.info('%s', message)
        broken = {}
        for name, entry in sorted(snap.jobs.items()):
            if entry.exists and entry.unit is None and entry.target_state in ('loaded', 'launched'):
                broken[name] = '%s cannot be placed: %s' % (name, entry.error or 'contents unreadable')
                if entry.reason != broken[name]:
                    self.store.set_reason(name, broken[name])
                    writes += 1
                    self.log.warning('%s', broken[name])
        for name, entry in sorted(snap.jobs.items()):
            if not entry.reason or name in result.unplaceable or name in broken:
                continue
            if self.store.clear_reason(name):
                writes += 1
        writes += self._forget_vanished(snap)
        writes += self._collect(snap)
        writes += self._collect_orphans(snap)
        return writes

    def _forget_vanished(self, snap):
        """Drop the states reported by machines that are no longer registered."""
        reporting = set()
        for per_machine in snap.states.values():
            reporting.update(per_machine)
        writes = 0
        for mid in sorted(reporting - set(snap.machines)):
            removed = self.store.delete_states_of(mid, snap)
            if removed:
                writes += removed
                self.log.info('forgot %d unit state(s) of vanished machine %s', removed, short_id(mid))
        return writes

    def _aged(self, since, current):
        """Of ``current``, those found in every pass for ``gc_grace`` seconds (``since`` keeps
        when each was first found); they are forgotten in ``since`` as they are returned."""
        now = self.clock()
        for item in list(since):
            if item not in current:
                del since[item]
        due = []
        for item in sorted(current):
            if now - since.setdefault(item, now) >= self.gc_grace:
                due.append(item)
                del since[item]
        return due

    def _collect(self, snap):
        """Delete unit contents unused for ``gc_grace`` seconds."""
        writes = 0
        for unit_hash in self._aged(self._unused_since, self.store.unused_contents(snap)):
            if self.store.delete_contents(unit_hash, snap.content_index.get(unit_hash)):
                writes += 1
                self.log.info('collected unused unit contents %s', short_hash(unit_hash))
        return writes

    def _collect_orphans(self, snap):
        """Delete job keys whose job is gone (no ``object``), found so for ``gc_grace`` seconds."""
        orphans = [name for name, entry in snap.jobs.items() if not entry.exists]
        writes = 0
        for name in self._aged(self._orphan_since, orphans):
            removed = self.store.delete_orphan_job(name)
            if removed:
                writes += removed
                self.log.info('removed %d key(s) left by destroyed unit %s', removed, name)
        return writes
