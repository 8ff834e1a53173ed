# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory stand-in for ``fleet_systemd.Systemd`` (unit files, jobs, states, main PIDs)."""

from __future__ import annotations

import itertools
import threading

_PIDS = itertools.count(1000)


class FakeSystemd(object):
    """Records every call; started units are ``active``/``running`` with a main PID."""

    def __init__(self, system_state='running'):
        self.files = {}
        self.loaded = {}
        self.active = {}
        self.calls = []
        self.stop_waited = {}  # name -> whether the last stop waited for its job to finish
        self.system = system_state
        self.fail_start = set()
        self.fail_stop = set()  # units whose main process exits non-zero when stopped
        self.start_delay = 0.0  # seconds a start takes (the previous state is reported meanwhile)
        self.stop_delay = 0.0  # seconds a stop takes (the unit runs, deactivating, meanwhile)
        self.lock = threading.Lock()

    def local_units(self):
        with self.lock:
            return dict(self.files)

    def write(self, name, text):
        with self.lock:
            self.calls.append(('write', name))
            self.files[name] = text

    def remove(self, name):
        with self.lock:
            self.calls.append(('remove', name))
            self.files.pop(name, None)

    def daemon_reload(self):
        with self.lock:
            self.calls.append(('daemon-reload',))
            self.loaded = dict(self.files)

    def start(self, names):
        with self.lock:
            for name in names:
                self.calls.append(('start', name))
                if name not in self.loaded and name in self.files:
                    # systemd reads a unit file it has not seen when a job asks for the unit
                    self.loaded[name] = self.files[name]
                if name in self.loaded:
                    if self.start_delay:
                        threading.Timer(self.start_delay, self._started, (name,)).start()
                    else:
                        self._started(name, locked=True)

    def _started(self, name, locked=False):
        if not locked:
            with self.lock:
                return self._started(name, locked=True)
        self.active[name] = 'failed' if name in self.fail_start else next(_PIDS)
        return None

    def restart(self, names):
        with self.lock:
            for name in names:
                self.calls.append(('restart', name))
                self.active[name] = next(_PIDS)

    def stop(self, names, block=False):
        with self.lock:
            for name in names:
                self.calls.append(('stop', name))
                self.stop_waited[name] = block
                if name in self.fail_stop and self.active.get(name):
                    self.active[name] = 'failed'
                elif self.stop_delay and self.active.get(name) not in (None, 'failed', 'stopping'):
                    self.active[name] = 'stopping'
                    threading.Timer(self.stop_delay, self._stopped, (name,)).start()
                elif self.active.get(name) != 'stopping':
                    self.active.pop(name, None)

    def _stopped(self, name):
        with self.lock:
            if self.active.get(name) == 'stopping':
                del self.active[name]

    def reset_failed(self, names):
        pass

    def states(self, names):
        with self.lock:
            result = {}
            for name in names:
                load = 'loaded' if name in self.loaded else 'not-found'
                pid = self.active.get(name)
                if pid == 'failed':
                    result[name] = (load, 'failed', 'failed', '0')
                elif pid == 'stopping':
                    result[name] = (load, 'deactivating', 'stop-sigterm', '0')
                elif pid:
                    result[name] = (load, 'active', 'running', str(pid))
                else:
                    result[name] = (load, 'inactive', 'dead', '0')
            return result

    def system_state(self):
        return self.system

    def count(self, action, name=None):
        with self.lock:
            return sum(1 for c in self.calls if c[0] == action and (name is None or c[1] == name))
