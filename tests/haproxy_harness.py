# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Real HAProxy, HTTP backends and the discover watcher on loopback, for tests and benchmarks.

HAProxy runs as a child in master-worker mode (``haproxy -W``) and is reloaded with SIGUSR2,
as systemd's ``reload`` does on the nodes. Backends are ``busybox httpd`` processes (Python's
http.server when busybox is missing) that answer their own name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from etcd_server import free_port

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(REPO_ROOT, 'roles', 'node_runtime', 'files', 'haproxy.cfg.j2')
COLLECTIONS = os.path.join(REPO_ROOT, 'playbooks', 'collections')
AGENTS = os.path.join(REPO_ROOT, 'agents')


def haproxy_binary():
    return os.environ.get('HAPROXY_BINARY') or shutil.which('haproxy') or (
        '/usr/sbin/haproxy' if os.access('/usr/sbin/haproxy', os.X_OK) else None)


def wait_for(predicate, timeout=10.0, interval=0.05, what='condition'):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # pylint: disable=broad-except
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError('timed out after %.1fs waiting for %s (last: %r)' % (timeout, what, last))


def http_get(port, path='/', timeout=2.0, host='127.0.0.1'):
    """GET on a new connection; returns the body (stripped text); raises on any failure."""
    request = urllib.request.Request('http://%s:%d%s' % (host, port, path), headers={'Connection': 'close'})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode('utf-8', 'replace').strip()


class Backend(object):
    """An HTTP server on 127.0.0.1 answering ``name`` on every path."""

    def __init__(self, name, workdir, port=None):
        self.name = name
        self.port = port or free_port()
        self.root = os.path.join(workdir, 'www-%s' % name)
        self.process = None

    @property
    def value(self):
        return '127.0.0.1:%d' % self.port

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, 'index.html'), 'w') as handle:
            handle.write(self.name + '\n')
        busybox = shutil.which('busybox')
        if busybox:
            argv = [busybox, 'httpd', '-f', '-p', '127.0.0.1:%d' % self.port, '-h', self.root]
        else:
            argv = [sys.executable, '-m', 'http.server', '--bind', '127.0.0.1', '--directory', self.root,
                    str(self.port)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: http_get(self.port) == self.name, 5.0, what='backend %s' % self.name)
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def children_of(pid):
    """PIDs of the running processes whose parent is ``pid``."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            pids.append(int(entry))
    return sorted(pids)


class HaproxyProcess(object):
    """HAProxy in master-worker mode as a child process, reloaded with SIGUSR2 (its master CLI,
    ``-S``, at ``master_socket`` too when ``master_cli`` is set)."""

    def __init__(self, workdir, binary=None, master_cli=False):
        self.workdir = workdir
        self.master_socket = os.path.join(workdir, 'master.sock') if master_cli else None
        self.binary = binary or haproxy_binary()
        self.config = os.path.join(workdir, 'haproxy.cfg')
        self.pidfile = os.path.join(workdir, 'haproxy.pid')
        self.runtime_socket = os.path.join(workdir, 'admin.sock')
        self.server_state_file = os.path.join(workdir, 'server-state')
        self.log_path = os.path.join(workdir, 'haproxy.log')
        self.process = None
        self._log = None

    def write_initial(self):
        with open(self.config, 'w') as handle:
            handle.write('global\n    stats socket %s mode 600 level admin expose-fd listeners\n'
                         'defaults\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n'
                         % self.runtime_socket)

    @property
    def reload_command(self):
        return ['kill', '-USR2', str(self.process.pid)]

    def start(self):
        if not os.path.exists(self.config):
            self.write_initial()
        self._log = open(self.log_path, 'ab')
        command = [self.binary, '-W', '-f', self.config, '-p', self.pidfile]
        if self.master_socket:
            command += ['-S', self.master_socket + ',mode,600']
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.runtime_socket), 10.0, what='HAProxy runtime socket')
        return self

    def log(self):
        with open(self.log_path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')

    def workers(self):
        """PIDs of the master's children (the workers, old and new)."""
        return children_of(self.process.pid)

    def reloads(self):
        """How many times the master loaded a configuration after the start."""
        return max(0, self.log().count('Loading success.') - 1)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def watcher_settings(haproxy, services, stats_port, prefix='/services', template=TEMPLATE, **extra):
    """Settings for the discover watcher driving ``haproxy`` (loopback only, no user/chroot)."""
    settings = {
        'prefix': prefix,
        'services': services,
        'bind_address': '127.0.0.1',
        'template': template,
        'status_file': os.path.join(haproxy.workdir, 'status.json'),
        'debounce': 0.1,
        'max_delay': 1.0,
        'check': {'inter': '1s', 'rise': 2, 'fall': 2},
        'stats': {'bind': '127.0.0.1:%d' % stats_port},
        'haproxy': {
            'config': haproxy.config,
            'binary': haproxy.binary,
            'reload_command': haproxy.reload_command,
            'runtime_socket': haproxy.runtime_socket,
            'server_state_file': haproxy.server_state_file,
            'user': '', 'group': '', 'chroot': '', 'log': '',
        },
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key].update(value)
        else:
            settings[key] = value
    return settings


class WatcherProcess(object):
    """``python -m etcdfleet_agents.discover`` as a child process with a settings file."""

    def __init__(self, workdir, settings, endpoint, api_version='v2'):
        self.workdir = workdir
        self.settings_path = os.path.join(workdir, 'discover.json')
        self.log_path = os.path.join(workdir, 'discover.log')
        with open(self.settings_path, 'w') as handle:
            json.dump(settings, handle)
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join([AGENTS, COLLECTIONS]),
                        ETCDFLEET_ENDPOINTS=endpoint, ETCDFLEET_API_VERSION=api_version,
                        ETCDFLEET_TIMEOUT='2')
        self.process = None
        self._log = None

    def command(self, *args):
        return [sys.executable, '-m', 'etcdfleet_agents.discover', '--config', self.settings_path] + list(args)

    def run(self, *args, timeout=60):
        return subprocess.run(self.command(*args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False, universal_newlines=True)

    def start(self):
        self._log = open(self.log_path, 'ab')
        self.process = subprocess.Popen(self.command(), env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def log(self):
        with open(self.log_path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')

    def rss_kib(self):
        with open('/proc/%d/status' % self.process.pid) as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        return None

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        code = self.process.returncode if self.process is not None else None
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code
