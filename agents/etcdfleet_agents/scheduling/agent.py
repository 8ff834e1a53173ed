# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet agent: runs on this machine the units the registry gives it.

Desired here = units whose ``target`` is this machine plus global units whose
metadata matches it (``placement.desired_units``), in state ``loaded``
or ``launched``.  The agent writes each one to the runtime unit directory
(``/run/fleet/units/<name>``), links it into ``/run/systemd/system``, reloads
systemd once per pass when files it knows changed or went, starts launched
units (with the launched units bound to them: a ``BindsTo=`` sidekick that
stopped with its partner starts again with it) and stops loaded ones, and
removes (stop, unlink, reload) units no longer meant to be here.

It keeps no state of its own across restarts: the unit files in the runtime
directory and systemd's view are the truth, so a restarted agent finds its
units running and leaves them alone (same main PID).  Stopping the agent never
stops its units.  systemd is reached through ``systemd.manager.Systemd``.
"""

import logging
import threading

from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import (
    STATE_LAUNCHED,
    UnitStateRecord,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_names import expand_specifiers

from etcdfleet_agents.scheduling.placement import desired_units, placement_inputs
from etcdfleet_agents.systemd.manager import ACTIVE_OR_STARTING


class Agent(object):
    """Makes this machine run what the registry says; ``reconcile(snapshot)`` is one pass."""

    def __init__(self, store, machine, systemd, log=None):
        self.store = store
        self.machine = machine
        self.systemd = systemd
        self.log = log or logging.getLogger('fleet.agent')
        self.lock = threading.Lock()
        # What this agent manages now: {name: (target_state, unit_hash, is_global)}
        self.managed = {}
        # Units this agent started (or found running) while their desired state was launched.
        self.started = set()

    def desired(self, snap):
        """``{name: (target_state, UnitFile, is_global)}`` for this machine."""
        machines = dict(snap.machines)
        machines[self.machine.id] = self.machine
        jobs = placement_inputs(snap)
        wanted = desired_units(self.machine.id, machines, jobs)
        result = {}
        for name, job in wanted.items():
            entry = snap.jobs.get(name)
            if entry is None or entry.unit is None:
                continue
            result[name] = (job.target_state, entry.unit, job.is_global)
        return result

    def reconcile(self, snap):
        """One pass; returns the number of systemd actions taken."""
        desired = self.desired(snap)
        local = self.systemd.local_units()
        actions = 0

        removed = sorted(n for n in local if n not in desired)
        written = []
        changed = []
        for name in sorted(desired):
            text = desired[name][1].text
            if local.get(name) != text:
                if name in local:
                    changed.append(name)
                written.append(name)

        if removed:
            # every stop job must have finished before a file goes: a stop still queued (behind a
            # BindsTo= partner's, say) when systemd reloads without the file never runs ExecStop
            self.systemd.stop(removed, block=True)
            for name in removed:
                self.systemd.remove(name)
                self.started.discard(name)
                self.log.info('unloaded %s', name)
            self.store.clear_heartbeats(removed, self.machine.id)
            actions += len(removed)
        for name in written:
            self.systemd.write(name, desired[name][1].text)
            self.log.info('%s %s (%s)', 'rewrote' if name in changed else 'loaded', name,
                          desired[name][1].short_hash)
        # systemd must read again the files it knows that changed or went; a new file is read
        # when a start job asks for it (``Systemd.start``), so a burst of new launched units
        # costs no reload of the whole manager
        if removed or changed or any(desired[n][0] != STATE_LAUNCHED for n in written):
            self.systemd.daemon_reload()
            actions += 1
        if removed:
            self.systemd.reset_failed(removed)

        launched = [n for n in sorted(desired) if desired[n][0] == STATE_LAUNCHED]
        loaded = [n for n in sorted(desired) if desired[n][0] != STATE_LAUNCHED]
        # systemd is asked only about the units whose state decides something in this pass:
        # launched units not started yet or with new contents, and loaded units; a unit whose
        # file did not exist before this pass has nothing running yet
        new = set(written) - set(changed)
        asked = [n for n in launched if (n not in self.started or n in changed) and n not in new]
        asked += [n for n in loaded if n not in new]
        states = self.systemd.states(asked) if asked else {}

        to_restart = [n for n in launched if n in changed and states.get(n, ('',) * 4)[1] in ACTIVE_OR_STARTING]
        to_start = []
        for name in launched:
            if name in to_restart:
                continue
            active = states.get(name, ('',) * 4)[1]
            if name in self.started and name not in changed:
                continue
            if active in ACTIVE_OR_STARTING:
                self.started.add(name)
                continue
            to_start.append(name)
        to_start += self._sidekicks_of(set(to_start) | set(to_restart), launched, desired)
        if to_restart:
            self.systemd.restart(to_restart)
            for name in to_restart:
                self.log.info('restarted %s with new contents', name)
            self.started.update(to_restart)
            actions += len(to_restart)
        if to_start:
            self.systemd.start(to_start)
            for name in to_start:
                self.log.info('started %s', name)
            self.started.update(to_start)
            actions += len(to_start)

        to_stop = [n for n in loaded if states.get(n, ('',) * 4)[1] in ACTIVE_OR_STARTING]
        halted = [n for n in loaded if n in self.started]
        if halted:
            self.started.difference_update(halted)
            self.store.clear_heartbeats(halted, self.machine.id)
        if to_stop:
            self.systemd.stop(to_stop)
            for name in to_stop:
                self.log.info('stopped %s', name)
            actions += len(to_stop)

        with self.lock:
            self.managed = dict((n, (desired[n][0], desired[n][1].hash, desired[n][2])) for n in desired)
        return actions

    def _sidekicks_of(self, starting, launched, desired):
        """Launched units bound (``BindsTo=``) to a unit started in this pass and not started
        themselves: stopping their partner stopped them, and the registry still wants them
        running (``fleetctl stop`` of the sidekick itself makes it ``loaded``)."""
        found = []
        for name in launched:
            if name in starting:
                continue
            partners = set(expand_specifiers(' '.join(desired[name][1].get('Unit', 'BindsTo')), name).split())
            if partners & starting:
                found.append(name)
        return found

    def managed_units(self):
        with self.lock:
            return dict(self.managed)

    def state_records(self, names_states):
        """UnitStateRecords for ``{name: (load, active, sub, pid)}`` of managed units."""
        managed = self.managed_units()
        records = {}
        for name, state in names_states.items():
            if name not in managed:
                continue
            records[name] = UnitStateRecord(name=name, machine_id=self.machine.id,
                                            load_state=state[0], active_state=state[1],
                                            sub_state=state[2], unit_hash=managed[name][1])
        return records
