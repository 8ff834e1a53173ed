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
A unit that leaves a live machine (drained, or its rules no longer hold there) is placed again
only once that machine reports it stopped: a move is a stop then a start, never two copies.

An etcd outage is not a machine failure. Every machine's registration (a key with a short TTL)
can expire while etcd is away, and machines register again one by one when it is back; the
engine must not read their absence as death. So after this engine's own connection to etcd was
lost (``connection_lost``/``connection_ok``, told by the daemon), a machine that still has units
but is not registered, and that the engine has not seen registered since etcd came back, is
presumed alive for as long as the outage lasted plus three machine TTLs, at most
``outage_grace`` seconds: its units stay where they are and nothing new is placed on it.
"Seen since" counts only from ``machine_ttl`` seconds after the return (a registration read
earlier may be one that survived the outage and is about to expire). A machine
that disappears while the engine's etcd is healthy, or that was seen again after the outage and
then went, fails over at once, as before.

Unless etcd expired its registration at a time that was not the machine's doing. etcd's v2 API
does that to keys with a TTL when a member that led comes back from a pause: renewals it held
are applied late, with the expiration they carried then. The engine reads from etcd's history
how a vanished registration ended. One that etcd expired before it was due, or more than a
machine TTL after, is presumed alive for one machine TTL (time enough for its machine to register
again). A machine that dies lets its registration run out when due, and one that is removed has
it deleted: both fail over at once.
"""

import logging
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import ACTION_EXPIRE
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import RUNNING_STATES, Machine, short_id
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import short_hash

from etcdfleet_agents.scheduling.placement import PENDING_SUMMARY, placement_inputs, plan

# Seconds an etcd expiration may differ from this machine's clock without meaning anything.
EXPIRY_SKEW = 0.5


class Engine(object):
    """Reconciles placements; ``reconcile(snapshot)`` is one pass."""

    def __init__(self, store, machine_id='', gc_grace=30.0, log=None, clock=time.monotonic, outage_grace=30.0,
                 machine_ttl=3):
        self.store = store
        self.machine_id = machine_id
        self.gc_grace = float(gc_grace)
        self.outage_grace = float(outage_grace)
        self.machine_ttl = float(machine_ttl)
        self.log = log or logging.getLogger('fleet.engine')
        self.clock = clock
        self._unused_since = {}
        self._orphan_since = {}
        self._offline = False
        self._lost_at = None
        self._regained_at = None
        self._grace = self.outage_grace
        self._known = {}
        self._confirmed = set()
        self._presumed_logged = frozenset()
        self._holding = {}
        self._registration_index = {}
        self._early = {}
        self._early_held = frozenset()

    # -- etcd outages ----------------------------------------------------------------------

    def connection_lost(self):
        """This machine cannot reach etcd (its registration renewal failed): what the engine saw
        of the machines before is no proof that they are alive after it."""
        if not self._offline:
            self._lost_at = self.clock()
        self._offline = True
        self._confirmed = set()

    def connection_ok(self):
        """This machine reached etcd; after a loss, the outage grace starts now. It lasts as long
        as the outage did plus three machine TTLs (the time machines need to register again), at
        most ``outage_grace``: a blip of etcd (the leader's machine dying with it) delays a real
        failover by seconds, not by the whole grace."""
        if self._offline:
            self._offline = False
            self._regained_at = self.clock()
            self._grace = min(self.outage_grace, self._regained_at - self._lost_at + 3 * self.machine_ttl)
            self._confirmed = set()

    def online(self):
        """Whether this machine reaches etcd (as far as the last renewal told)."""
        return not self._offline

    def in_grace(self):
        """Whether the outage grace runs (the daemon then has ``observe`` called every second)."""
        return self._offline or (self._regained_at is not None
                                 and self.clock() - self._regained_at < self._grace)

    def observe(self, snap):
        """Note the machines registered in ``snap`` (read by this daemon, leading or not)."""
        self._known.update(snap.machines)
        self._registration_index.update(snap.machine_index)
        if self._regained_at is not None and not self._offline and \
                self.clock() - self._regained_at > self.machine_ttl + 1:
            self._confirmed.update(snap.machines)

    def _presumed(self, snap):
        """``{id: Machine}`` of the machines with units that are presumed alive though unregistered."""
        if not self.in_grace():
            return {}
        targets = set(job.target for job in snap.jobs.values() if job.target)
        presumed = dict((mid, self._known.get(mid) or Machine(id=mid)) for mid in targets
                        if mid not in snap.machines and mid not in self._confirmed)
        if frozenset(presumed) != self._presumed_logged:
            self._presumed_logged = frozenset(presumed)
            if presumed:
                self.log.info('etcd was unreachable: units of unregistered machine(s) %s stay in place '
                              'for up to %ds', ', '.join(short_id(m) for m in sorted(presumed)), self._grace)
        return presumed

    def _expired_early(self, snap, presumed):
        """``{id: Machine}`` of the unregistered machines with units whose registration etcd
        expired at a time that was not theirs: they keep their units for one machine TTL."""
        now = self.clock()
        gone = set(job.target for job in snap.jobs.values() if job.target) - set(snap.machines) - set(presumed)
        for mid in list(self._early):
            if mid not in gone:
                del self._early[mid]
        held = {}
        for mid in sorted(gone):
            if mid not in self._early:
                self._early[mid] = self._early_due(mid, now)
            due = self._early[mid]
            if due is not None and now < due:
                held[mid] = self._known.get(mid) or Machine(id=mid)
        self._early_held = frozenset(held)
        return held

    def _early_due(self, mid, now):
        """Until when (engine clock) the vanished registration of ``mid`` is presumed alive, if
        etcd expired it at a time that was not the machine's doing; ``None`` when it ran out
        when due, was deleted, or its end is unknown."""
        index = self._registration_index.get(mid)
        if index is None:
            return None
        event = self.store.registration_end(mid, index)
        if event is None or event.action != ACTION_EXPIRE or event.prev_node is None:
            return None
        left = event.prev_node.seconds_left()
        if left is None:
            return None
        self.log.debug('the registration of machine %s expired %.1fs from when it was due', short_id(mid), -left)
        # etcd's expiration is on the clock of the member that took the renewal: differences within
        # EXPIRY_SKEW are no sign, and a hold lasts at most one machine TTL (a live machine registers
        # again within its renewal interval)
        if -self.machine_ttl <= left <= EXPIRY_SKEW:
            return None
        self.log.info('etcd expired the registration of machine %s %.1fs %s it was due: its units stay in place '
                      'for up to %.1fs', short_id(mid), abs(left), 'before' if left > 0 else 'after', self.machine_ttl)
        return now + self.machine_ttl

    # -- one pass --------------------------------------------------------------------------

    def reconcile(self, snap):
        """One pass over ``snap``; returns the number of writes made."""
        writes = 0
        self.observe(snap)
        jobs = placement_inputs(snap)
        presumed = self._presumed(snap)
        presumed.update(self._expired_early(snap, presumed))
        machines = dict(snap.machines)
        machines.update(presumed)
        result = plan(machines, jobs)
        held = set(m.unit for m in result.unschedule if m.machine_id in presumed)
        unschedule = [m for m in result.unschedule if m.unit not in held]
        schedule = [m for m in result.schedule if m.unit not in held and m.machine_id not in presumed]
        schedule = self._hold_running(snap, schedule)
        if unschedule:
            removed = self.store.unschedule_many((m.unit, m.machine_id) for m in unschedule)
            for move in unschedule:
                if move.unit in removed:
                    writes += 1
                    self.log.info('unscheduled %s from %s: %s', move.unit, short_id(move.machine_id), move.reason)
        if schedule:
            placed = self.store.schedule_many((m.unit, m.machine_id) for m in schedule)
            for move in schedule:
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
        writes += self._forget_vanished(snap, machines)
        writes += self._collect(snap)
        writes += self._collect_orphans(snap)
        return writes

    def _hold_running(self, snap, schedule):
        """Leave out the placements of units still running on another live machine.

        A unit moved off a machine that is alive (drained, or its rules no longer hold there)
        stops there first: it is placed again once that machine reports it stopped, so it
        never runs twice. A machine that is gone holds nothing."""
        holding = {}
        kept = []
        for move in schedule:
            where = [mid for mid, record in snap.states.get(move.unit, {}).items()
                     if mid != move.machine_id and mid in snap.machines
                     and record.active_state in RUNNING_STATES]
            if where:
                holding[move.unit] = where[0]
            else:
                kept.append(move)
        for name in sorted(set(holding) - set(self._holding)):
            self.log.info('%s waits until it has stopped on %s', name, short_id(holding[name]))
        self._holding = holding
        return kept

    def holding(self):
        """Whether a placement waits for a unit to stop elsewhere, or a machine whose registration
        etcd expired out of time is held (the daemon then has the engine reconcile every second:
        unit states and time do not wake it)."""
        return bool(self._holding) or bool(self._early_held)

    def _forget_vanished(self, snap, machines):
        """Drop the states reported by machines that are no longer registered (nor presumed alive)."""
        reporting = set()
        for per_machine in snap.states.values():
            reporting.update(per_machine)
        writes = 0
        for mid in sorted(reporting - set(machines)):
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
