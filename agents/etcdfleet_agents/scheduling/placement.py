# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where fleet units run: pure placement decisions.

Given the machines, the units with their desired state, where each is placed
now and its [X-Fleet] rules, this module decides

* which machine an unplaced unit goes to (the least-loaded machine that
  satisfies every rule, ties broken by machine ID), or why none can take it,
  machine by machine;
* which placed units must leave their machine (machine gone, unit stopped
  being wanted, rules no longer hold, machine drained: a drained machine takes
  no placed unit, while global units stay on it);
* which global units a machine runs;
* the engine's whole reconcile plan, deterministically.

Nothing here talks to etcd or systemd; the engine and the agent feed it a
snapshot (:func:`placement_inputs`) and carry out what it returns.
"""

from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import (
    STATE_LAUNCHED,
    STATE_LOADED,
    short_id,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_names import (
    glob_is_literal,
    glob_match,
    parse_unit_name,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_rules import FleetOptions, fleet_options

__all__ = [
    'PlacementInput', 'placement_inputs', 'Exclusion', 'Decision', 'Move', 'Plan',
    'machine_units', 'exclusions', 'decide', 'unfit_units', 'global_placement',
    'desired_units', 'plan', 'PENDING_SUMMARY',
]

_ACTIVE_STATES = (STATE_LOADED, STATE_LAUNCHED)
# why a placeable unit is not placed in this pass (the engine places it in the next one)
PENDING_SUMMARY = 'placement continues in the next pass'


@dataclass(frozen=True)
class PlacementInput:
    """A unit as placement sees it: its rules, desired state and where it is placed now.

    ``machine_id`` is where the engine placed it (``job/<unit>/target``);
    ``established`` says the unit is reported running there, so that when two
    placed units clash the newer arrival is the one moved.
    """

    name: str
    options: FleetOptions
    target_state: str = STATE_LAUNCHED
    machine_id: Optional[str] = None
    established: bool = False

    @classmethod
    def from_unit(cls, name, unit, target_state=STATE_LAUNCHED, machine_id=None, established=False):
        return cls(name=name, options=fleet_options(unit, name), target_state=target_state,
                   machine_id=machine_id or None, established=established)

    @property
    def is_global(self):
        return self.options.is_global

    @property
    def is_template(self):
        info = parse_unit_name(self.name)
        return info is not None and info.is_template

    @property
    def wanted(self):
        """Desired state asks for the unit to be on a machine."""
        return self.target_state in _ACTIVE_STATES


@dataclass(frozen=True)
class Exclusion:
    """One rule keeping a unit off one machine."""

    machine_id: str
    rule: str
    text: str
    other: Optional[str] = None

    def __str__(self):
        return self.text


@dataclass(frozen=True)
class Decision:
    """Outcome of placing one unit.

    ``machine_id`` is ``None`` when no machine can take it; ``reasons`` then
    maps every machine ID to the rules that excluded it.  For a placed unit
    ``reasons`` covers the machines tried (and refused) before the chosen
    one.  ``evicts`` lists units on the chosen machine that the unit replaces
    (``Replaces``): they move away.  ``summary`` explains a refusal that is
    not about any one machine (a template, no machines at all).
    """

    unit: str
    machine_id: Optional[str]
    reasons: Mapping[str, Tuple[Exclusion, ...]] = field(default_factory=dict)
    evicts: Tuple[str, ...] = ()
    summary: str = ''

    @property
    def placed(self):
        return self.machine_id is not None

    @property
    def message(self):
        if self.placed:
            return '%s placed on %s' % (self.unit, short_id(self.machine_id))
        if self.summary:
            return '%s cannot be placed: %s' % (self.unit, self.summary)
        parts = []
        for mid in sorted(self.reasons):
            parts.append('%s: %s' % (short_id(mid), ', '.join(str(e) for e in self.reasons[mid])))
        return '%s cannot be placed: %s' % (self.unit, '; '.join(parts))

    def reason_texts(self):
        """``{machine_id: [text, ...]}`` for storing or returning as data."""
        return {mid: [str(e) for e in ex] for mid, ex in sorted(self.reasons.items())}


@dataclass(frozen=True)
class Move:
    """One write the engine makes: take ``unit`` off or put it on ``machine_id``."""

    unit: str
    machine_id: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """The engine's reconcile plan.

    Apply ``unschedule`` first (compare-and-delete of ``target`` with the old
    machine), then ``schedule`` (create-only writes of ``target``).
    ``placements`` is the resulting unit -> machine map, ``unplaceable`` holds
    a :class:`Decision` with reasons for every wanted unit left without a
    machine.
    """

    unschedule: Tuple[Move, ...]
    schedule: Tuple[Move, ...]
    placements: Mapping[str, str]
    unplaceable: Mapping[str, Decision]

    @property
    def empty(self):
        return not self.unschedule and not self.schedule


_MAX_NAMED = 3


def placement_inputs(snap):
    """``{name: PlacementInput}`` for every job of registry snapshot ``snap`` with readable
    contents and a desired state; a unit whose rules cannot be read is left out and noted in
    ``snap.errors``."""
    result = {}
    for name, entry in snap.jobs.items():
        if entry.unit is None or entry.target_state is None:
            continue
        try:
            options = fleet_options(entry.unit, name)
        except Exception as exc:  # pylint: disable=broad-except
            snap.errors.append('%s: %s' % (name, exc))
            continue
        established = bool(entry.target and entry.heartbeat == entry.target)
        result[name] = PlacementInput(name=name, options=options, target_state=entry.target_state,
                                      machine_id=entry.target, established=established)
    return result


def _machines_by_id(machines):
    if isinstance(machines, Mapping):
        return dict(machines)
    return {m.id: m for m in machines}


def _jobs_by_name(jobs):
    if isinstance(jobs, Mapping):
        return dict(jobs)
    return {j.name: j for j in jobs}


def _names_text(names):
    names = sorted(names)
    shown = ', '.join(names[:_MAX_NAMED])
    if len(names) > _MAX_NAMED:
        shown += ' and %d more' % (len(names) - _MAX_NAMED)
    return shown


class _View:
    """The units on one machine, indexed by their Conflicts and Replaces globs."""

    __slots__ = ('machine', 'units', 'conflicts', 'replaces')

    def __init__(self, machine):
        self.machine = machine
        self.units = {}
        self.conflicts = {}
        self.replaces = {}

    @classmethod
    def of(cls, machine, units):
        view = cls(machine)
        for name in sorted(units):
            view.add(units[name])
        return view

    def add(self, job):
        self.units[job.name] = job
        for pattern in job.options.conflicts:
            self.conflicts.setdefault(pattern, set()).add(job.name)
        for pattern in job.options.replaces:
            self.replaces.setdefault(pattern, set()).add(job.name)

    def matching(self, pattern, skip):
        """Names of units here matching ``pattern``, ``skip`` excluded, sorted."""
        if glob_is_literal(pattern):
            return [pattern] if pattern in self.units and pattern != skip else []
        return sorted(n for n in self.units if n != skip and glob_match(pattern, n))

    def patterns_matching(self, index, name):
        """``[(pattern, owners)]`` of ``index`` whose pattern matches ``name``."""
        out = []
        for pattern in sorted(index):
            if glob_match(pattern, name):
                owners = sorted(o for o in index[pattern] if o != name)
                if owners:
                    out.append((pattern, owners))
        return out

    def conflicts_with(self, job):
        """True if ``job`` and a unit here exclude each other by Conflicts."""
        for pattern in job.options.conflicts:
            if self.matching(pattern, job.name):
                return True
        return bool(self.patterns_matching(self.conflicts, job.name))

    def evictions(self, job):
        """Units here that ``job`` replaces (and that do not replace it back)."""
        out = set()
        for pattern in job.options.replaces:
            for name in self.matching(pattern, job.name):
                if self.units[name].options.replaces_unit(job.name) is None:
                    out.add(name)
        return tuple(sorted(out))


def _exclusions(job, view, placements):
    machine = view.machine
    mid = machine.id
    opts = job.options
    found = []
    if machine.drained and not opts.is_global:
        found.append(Exclusion(mid, 'Drained', 'machine %s is drained' % short_id(mid)))
    if opts.machine_id is not None and not machine.matches_id(opts.machine_id):
        found.append(Exclusion(mid, 'MachineID', '%s %s is not this machine'
                               % (opts.label('MachineID'), opts.machine_id)))
    for key, values in sorted(opts.machine_metadata.items()):
        if machine.metadata.get(key) not in values:
            found.append(Exclusion(mid, 'MachineMetadata', _metadata_text(key, values, machine)))
    for peer in opts.machine_of:
        if peer in view.units and peer != job.name:
            continue
        where = (placements or {}).get(peer)
        label = opts.label('MachineOf')
        if where:
            text = '%s %s not on this machine (it is on %s)' % (label, peer, short_id(where))
        else:
            text = '%s %s not on this machine (it is not placed anywhere)' % (label, peer)
        found.append(Exclusion(mid, 'MachineOf', text, other=peer))
    clashing = set()
    for pattern in opts.conflicts:
        hits = view.matching(pattern, job.name)
        if hits:
            clashing.update(hits)
            found.append(Exclusion(mid, 'Conflicts', 'Conflicts %s with %s on %s'
                                   % (pattern, _names_text(hits), short_id(mid)), other=hits[0]))
    for pattern, owners in view.patterns_matching(view.conflicts, job.name):
        owners = [o for o in owners if o not in clashing]
        if owners:
            clashing.update(owners)
            verb = 'has' if len(owners) == 1 else 'have'
            found.append(Exclusion(mid, 'Conflicts', '%s %s Conflicts %s on %s'
                                   % (_names_text(owners), verb, pattern, short_id(mid)), other=owners[0]))
    for pattern, owners in view.patterns_matching(view.replaces, job.name):
        for owner in owners:
            if owner in clashing:
                continue
            clashing.add(owner)
            if opts.replaces_unit(owner) is not None:
                found.append(Exclusion(mid, 'Replaces', '%s and %s on %s replace each other'
                                       % (job.name, owner, short_id(mid)), other=owner))
            else:
                found.append(Exclusion(mid, 'Replaces', '%s on %s has Replaces %s'
                                       % (owner, short_id(mid), pattern), other=owner))
    return found


def _metadata_text(key, wanted, machine):
    want = ' or '.join('%s=%s' % (key, v) for v in wanted)
    have = machine.metadata.get(key)
    if have is None:
        return 'MachineMetadata %s not matched (machine has no %s)' % (want, key)
    return 'MachineMetadata %s not matched (machine has %s=%s)' % (want, key, have)


def exclusions(job, machine, present, placements=None):
    """Rules that keep ``job`` off ``machine``; empty when it fits.

    ``present`` maps the units on that machine (see :func:`machine_units`) and
    ``placements`` maps every placed unit to its machine (used to say where a
    ``MachineOf`` peer is).
    """
    return _exclusions(job, _View.of(machine, present), placements)


def _views(machines, jobs, placements):
    """Units on each machine: placed wanted units first, then global units.

    Global units go, in name order, on each machine whose metadata they match
    and where no unit already present conflicts with them.
    """
    views = {mid: _View(machines[mid]) for mid in machines}
    for name in sorted(placements):
        mid = placements[name]
        job = jobs.get(name)
        if job is None or mid not in views:
            continue
        views[mid].add(job)
    for name in sorted(jobs):
        job = jobs[name]
        if not job.is_global or not job.wanted or job.is_template:
            continue
        for mid in sorted(views):
            view = views[mid]
            if not job.options.metadata_matches(view.machine.metadata):
                continue
            if view.conflicts_with(job):
                continue
            view.add(job)
    return views


def _placements_of(jobs, machines):
    """Current placements that count: wanted, non-global, on a known machine."""
    result = {}
    for name, job in jobs.items():
        if job.machine_id and job.wanted and not job.is_global and not job.is_template:
            if job.machine_id in machines:
                result[name] = job.machine_id
    return result


def machine_units(machines, jobs):
    """``{machine_id: {unit: PlacementInput}}``: what each machine is meant to run now."""
    machines = _machines_by_id(machines)
    jobs = _jobs_by_name(jobs)
    views = _views(machines, jobs, _placements_of(jobs, machines))
    return {mid: dict(view.units) for mid, view in views.items()}


def _not_schedulable(job, machines):
    if job.is_template:
        info = parse_unit_name(job.name)
        return ('%s is a template; templates are not placed, start an instance such as %s'
                % (job.name, '%s@1%s' % (info.prefix, info.suffix)))
    if not machines:
        return 'no machines are registered'
    return None


def _decide(job, views, placements):
    summary = _not_schedulable(job, views)
    if summary:
        return Decision(job.name, None, summary=summary)
    evictions = {}
    if job.options.replaces:
        for mid, view in views.items():
            evictions[mid] = view.evictions(job)

    # A unit that replaces another takes its place; otherwise least loaded.
    def order(mid):
        return (0 if evictions.get(mid) else 1, len(views[mid].units), mid)

    reasons = {}
    for mid in sorted(views, key=order):
        found = _exclusions(job, views[mid], placements)
        if found:
            reasons[mid] = tuple(found)
            continue
        return Decision(job.name, mid, reasons=reasons, evicts=evictions.get(mid, ()))
    return Decision(job.name, None, reasons=reasons)


def decide(job, machines, jobs):
    """Place one unit given the cluster as it is (``jobs`` holds the other units).

    Returns a :class:`Decision`; when the unit is placed, ``reasons`` covers
    the machines tried before the chosen one, otherwise every machine.  A
    unit already placed is decided as if it were not.
    """
    machines = _machines_by_id(machines)
    jobs = _jobs_by_name(jobs)
    jobs.pop(job.name, None)
    placements = _placements_of(jobs, machines)
    return _decide(job, _views(machines, jobs, placements), placements)


def global_placement(job, machines, jobs):
    """Where a global unit runs: ``(machine_ids, {machine_id: [Exclusion]})``."""
    machines = _machines_by_id(machines)
    jobs = _jobs_by_name(jobs)
    jobs[job.name] = job
    placements = _placements_of(jobs, machines)
    views = _views(machines, jobs, placements)
    running = sorted(mid for mid, view in views.items() if job.name in view.units)
    reasons = {}
    for mid in sorted(machines):
        if mid in running:
            continue
        others = {n: j for n, j in views[mid].units.items() if n != job.name}
        found = _exclusions(job, _View.of(machines[mid], others), placements)
        reasons[mid] = tuple(found) or (Exclusion(mid, 'Global', 'desired state is %s'
                                                  % job.target_state),)
    return running, reasons


def desired_units(machine_id, machines, jobs):
    """Units the agent on ``machine_id`` should have, name -> :class:`PlacementInput`.

    Units placed there plus global units matching its metadata, minus global
    units that conflict with what it already runs.  Units whose desired
    state is ``inactive`` are not included.
    """
    return machine_units(machines, jobs).get(machine_id, {})


def _check_order(jobs, names):
    """Order for re-checking placed units: the most recently arrived first."""
    names = sorted(names, reverse=True)
    return sorted(names, key=lambda n: jobs[n].established)


def _unfit(machines, jobs, placements, removed):
    """Drop units from ``placements`` until every remaining one fits; record why.

    Returns the machine views of what remains.
    """
    while True:
        views = _views(machines, jobs, placements)
        for name in _check_order(jobs, placements):
            mid = placements[name]
            found = _exclusions(jobs[name], views[mid], placements)
            if found:
                del placements[name]
                removed.append((name, mid, 'rules no longer hold on %s: %s'
                                % (short_id(mid), ', '.join(str(e) for e in found))))
                break
        else:
            return views


def _leave_reason(job, machines):
    if not job.wanted:
        return 'desired state %s' % job.target_state
    if job.is_template:
        return 'templates are not placed'
    if job.is_global:
        return 'global units are not placed by the engine'
    if job.machine_id not in machines:
        return 'machine %s went away' % job.machine_id
    return None


def unfit_units(machines, jobs):
    """Placed units that must leave their machine: ``[Move]`` with the reason.

    A unit leaves when its desired state is ``inactive``, its machine is gone,
    it is global or a template, or its rules no longer hold there.
    """
    machines = _machines_by_id(machines)
    jobs = _jobs_by_name(jobs)
    moves = []
    placements = {}
    for name in sorted(jobs):
        job = jobs[name]
        if not job.machine_id:
            continue
        reason = _leave_reason(job, machines)
        if reason:
            moves.append(Move(name, job.machine_id, reason))
        else:
            placements[name] = job.machine_id
    removed = []
    _unfit(machines, jobs, placements, removed)
    moves.extend(Move(n, m, r) for n, m, r in removed)
    return moves


def plan(machines, jobs, max_rounds=None):
    """The engine's reconcile plan for a snapshot (deterministic).

    1. Units leave their machine when :func:`unfit_units` says so.
    2. Wanted, unplaced, non-global units are placed in name order, round
       after round while any progress is made (so a ``MachineOf`` follower is
       placed once its peer is); a unit that replaces another takes its
       machine and the replaced unit moves on.
    3. Wanted units still without a machine get a :class:`Decision` with the
       reason for every machine.

    The plan only holds differences from the current placement: a unit taken
    off and put back on the same machine does not appear.
    """
    machines = _machines_by_id(machines)
    jobs = _jobs_by_name(jobs)
    initial = {n: j.machine_id for n, j in jobs.items() if j.machine_id}
    leave_reasons = {}
    placements = {}
    for name in sorted(initial):
        reason = _leave_reason(jobs[name], machines)
        if reason:
            leave_reasons[name] = reason
        else:
            placements[name] = initial[name]

    removed = []
    views = _unfit(machines, jobs, placements, removed)
    for name, _mid, reason in removed:
        leave_reasons[name] = reason

    schedule_reasons = {}
    candidates = sorted(n for n, j in jobs.items()
                        if j.wanted and not j.is_global and not j.is_template)
    limit = max_rounds if max_rounds is not None else 4 * len(jobs) + 4
    for _round in range(limit):
        progress = False
        evicted = False
        for name in candidates:
            if name in placements:
                continue
            job = jobs[name]
            decision = _decide(job, views, placements)
            if not decision.placed:
                continue
            placements[name] = decision.machine_id
            schedule_reasons[name] = 'desired state %s and unit not placed' % job.target_state
            progress = True
            if decision.evicts:
                for victim in decision.evicts:
                    if victim in placements:
                        del placements[victim]
                        leave_reasons[victim] = 'replaced by %s on %s' % (name, short_id(decision.machine_id))
                evicted = True
                break
            views[decision.machine_id].add(job)
        if evicted:
            removed = []
            views = _unfit(machines, jobs, placements, removed)
            for rname, _mid, reason in removed:
                leave_reasons[rname] = reason
            continue
        if not progress:
            break

    unschedule = []
    schedule = []
    for name in sorted(set(initial) | set(placements)):
        before, after = initial.get(name), placements.get(name)
        if before == after:
            continue
        if before:
            unschedule.append(Move(name, before, leave_reasons.get(name, 'moved')))
        if after:
            schedule.append(Move(name, after, schedule_reasons.get(name, 'placed')))

    unplaceable = {}
    for name in sorted(jobs):
        job = jobs[name]
        if name in placements or not job.wanted or job.is_global:
            continue
        decision = _decide(job, views, placements)
        if decision.placed:
            decision = Decision(name, None, summary=PENDING_SUMMARY)
        unplaceable[name] = decision
    return Plan(unschedule=tuple(unschedule), schedule=tuple(schedule),
                placements=dict(placements), unplaceable=unplaceable)
