# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet agent: runs on this machine the units the registry gives it.

Desired here = units whose ``target`` is this machine plus global units whose
metadata matches it (``fleet_placement.desired_units``), in state ``loaded``
or ``launched``.  The agent writes each one to the runtime unit directory
(``/run/fleet/units/<name>``), links it into ``/run/systemd/system``, reloads
systemd once per pass when files it knows changed or went, starts launched
units and stops loaded ones, and removes (stop, unlink, reload) units no
longer meant to be here.

It keeps no state of its own across restarts: the unit files in the runtime
directory and systemd's view are the truth, so a restarted agent finds its
units running and leaves them alone (same main PID).  Stopping the agent never
stops its units.
"""

import logging
import os
import re
import subprocess
import threading

from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_placement import desired_units
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import (
    STATE_LAUNCHED,
    UnitStateRecord,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import is_valid_unit_name

ACTIVE_OR_STARTING = ('active', 'activating', 'reloading')
# what systemctl start says of a unit file systemd did not (properly) read on demand
_NEEDS_RELOAD = re.compile(r'not found|failed to load properly')


class SystemdError(Exception):
    """A systemctl call failed."""


class Systemd(object):
    """systemd as the agent uses it, through ``systemctl``.

    ``unit_dir`` holds the unit files the agent wrote; each is linked into
    ``link_dir`` (systemd's runtime unit directory).
    """

    def __init__(self, unit_dir='/run/fleet/units', link_dir='/run/systemd/system',
                 systemctl='systemctl', timeout=30, log=None):
        self.unit_dir = unit_dir
        self.link_dir = link_dir
        self.systemctl = systemctl
        self.timeout = timeout
        self.log = log or logging.getLogger('fleet.systemd')

    def _run(self, *args, check=True):
        argv = [self.systemctl] + list(args)
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SystemdError('%s failed: %s' % (' '.join(argv), exc))
        if check and proc.returncode != 0:
            raise SystemdError('%s failed (exit %d): %s' % (' '.join(argv), proc.returncode,
                                                            proc.stderr.strip()))
        return proc

    def local_units(self):
        """``{name: text}`` of the unit files in ``unit_dir``."""
        result = {}
        try:
            names = os.listdir(self.unit_dir)
        except FileNotFoundError:
            return result
        for name in names:
            if not is_valid_unit_name(name):
                continue
            path = os.path.join(self.unit_dir, name)
            try:
                with open(path, 'r', encoding='utf-8') as handle:
                    result[name] = handle.read()
            except OSError:
                continue
        return result

    def write(self, name, text):
        """Write and link one unit file."""
        os.makedirs(self.unit_dir, mode=0o755, exist_ok=True)
        os.makedirs(self.link_dir, mode=0o755, exist_ok=True)
        path = os.path.join(self.unit_dir, name)
        tmp = path + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        link = os.path.join(self.link_dir, name)
        if os.path.islink(link) and os.readlink(link) == path:
            return
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(path, link)

    def remove(self, name):
        """Unlink and delete one unit file."""
        link = os.path.join(self.link_dir, name)
        path = os.path.join(self.unit_dir, name)
        if os.path.islink(link) and os.readlink(link) == path:
            os.unlink(link)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def daemon_reload(self):
        self._run('daemon-reload')

    def start(self, names):
        """Queue start jobs.  systemd (246 and later) loads a unit file it has not seen when a job
        asks for it, so new files need no daemon-reload.  Where that fails, systemd is reloaded
        and asked again: an older systemd answers "not found", and a unit whose file went and
        came back while its old process was still stopping "failed to load properly" (EBUSY)."""
        if not names:
            return
        proc = self._run('start', '--no-block', *names, check=False)
        if proc.returncode != 0 and _NEEDS_RELOAD.search(proc.stderr):
            self.log.info('systemd could not load new unit files on demand (%s): reloading it',
                          proc.stderr.strip().splitlines()[0])
            self.daemon_reload()
            proc = self._run('start', '--no-block', *names, check=False)
        if proc.returncode != 0:
            raise SystemdError('systemctl start --no-block %s failed (exit %d): %s'
                               % (' '.join(names), proc.returncode, proc.stderr.strip()))

    def restart(self, names):
        if names:
            self._run('restart', '--no-block', *names)

    def stop(self, names, block=False):
        if names:
            if block:
                self._run('stop', *names, check=False)
            else:
                self._run('stop', '--no-block', *names, check=False)

    def reset_failed(self, names):
        if names:
            self._run('reset-failed', *names, check=False)

    def states(self, names):
        """``{name: (load_state, active_state, sub_state, main_pid)}``.

        One ``systemctl list-units`` answers for the units systemd holds in memory (a single
        call for systemd, where ``show`` costs one per unit; ``main_pid`` is then ``''``); only
        the units it does not list (not loaded now, or with a backslash, which it would read
        as a pattern escape) are asked with ``systemctl show``.
        """
        names = list(names)
        result = {}
        if not names:
            return result
        plain = [n for n in names if '\\' not in n]
        if plain:
            wanted = set(plain)
            proc = self._run('list-units', '--all', '--full', '--plain', '--no-legend', '--no-pager',
                             '--', *plain, check=False)
            for line in proc.stdout.splitlines():
                parts = line.split(None, 4)
                if len(parts) >= 4 and parts[0] in wanted:
                    result[parts[0]] = (parts[1], parts[2], parts[3], '')
        rest = [n for n in names if n not in result]
        if not rest:
            return result
        proc = self._run('show', '--property=Id,LoadState,ActiveState,SubState,MainPID', '--', *rest,
                         check=False)
        blocks = proc.stdout.split('\n\n')
        for name, block in zip(rest, blocks):
            props = {}
            for line in block.splitlines():
                key, sep, value = line.partition('=')
                if sep:
                    props[key] = value
            result[name] = (props.get('LoadState', ''), props.get('ActiveState', ''),
                            props.get('SubState', ''), props.get('MainPID', ''))
        return result

    def system_state(self):
        """``systemctl is-system-running`` (``running``, ``degraded``, ``stopping``, ...)."""
        try:
            return self._run('is-system-running', check=False).stdout.strip()
        except SystemdError:
            return ''


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
        jobs = snap.placement_jobs()
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
            self.systemd.stop(removed)
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
