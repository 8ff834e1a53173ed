# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node agents as real processes, and throw-away containers on this machine's Docker.

Used by tests/integration/test_registrator.py, test_ambassador.py and bench/registrator_latency.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD_IMAGE = os.environ.get('ETCDFLEET_WORKLOAD_IMAGE', 'etcdfleet/busybox:latest')
TEST_LABEL = 'etcdfleet.test=registrator'
# PID 1 in the container: exits on SIGTERM at once (busybox sh)
IDLE_COMMAND = ['sh', '-c', "trap 'exit 0' TERM; sleep 3600 & wait"]


def docker(*args, check=True, timeout=60):
    return subprocess.run(['docker'] + list(args), check=check, capture_output=True, text=True, timeout=timeout)


def published_port(container, port):
    """The host port Docker published ``port`` (``'8000/tcp'``) of ``container`` on, on IPv4.
    Docker picks the IPv4 and IPv6 host ports separately, so they can differ; the registrator and
    the announcer use the IPv4 one."""
    lines = docker('port', container, port).stdout.split()
    ipv4 = [line for line in lines if not line.startswith('[')]
    if not ipv4:
        raise AssertionError('no IPv4 binding for %s %s in %r' % (container, port, lines))
    return int(ipv4[0].rsplit(':', 1)[1])


def docker_available():
    """None when the engine answers and the workload image exists, else the reason."""
    try:
        result = docker('info', '--format', '{{.ServerVersion}}', check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 'docker CLI unusable: %s' % exc
    if result.returncode != 0:
        return 'the Docker engine does not answer: %s' % result.stderr.strip()
    if docker('image', 'inspect', WORKLOAD_IMAGE, check=False).returncode != 0:
        return 'image %s is missing (make images builds it)' % WORKLOAD_IMAGE
    return None


def wait_for(condition, timeout=10.0, interval=0.02, what='condition'):
    """Poll ``condition`` until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %.1fs waiting for %s' % (timeout, what))
        time.sleep(interval)


class Containers(object):
    """Containers made by one test (named <tag>-<name>), removed by cleanup()."""

    def __init__(self, tag=None):
        self.tag = tag or 'etcdfleet-it-%s' % uuid.uuid4().hex[:6]
        self.names = set()

    def name(self, short):
        return '%s-%s' % (self.tag, short)

    def run(self, short, ports=(), labels=None, env=None, extra=(), command=None):
        """``docker run -d``; ports like ``'8080:80'`` or ``'5353:53/udp'``; returns the id."""
        name = self.name(short)
        args = ['run', '-d', '--name', name, '--label', TEST_LABEL]
        for port in ports:
            args += ['-p', port]
        for key, value in (labels or {}).items():
            args += ['--label', '%s=%s' % (key, value)]
        for key, value in (env or {}).items():
            args += ['-e', '%s=%s' % (key, value)]
        args += list(extra) + [WORKLOAD_IMAGE] + list(command or IDLE_COMMAND)
        self.names.add(name)
        return docker(*args).stdout.strip()

    def stop(self, short):
        docker('stop', '-t', '2', self.name(short))

    def kill(self, short, sig='KILL'):
        docker('kill', '-s', sig, self.name(short))

    def remove(self, short):
        docker('rm', '-f', self.name(short))

    def cleanup(self):
        if self.names:
            docker('rm', '-f', *sorted(self.names), check=False)
        self.names = set()


class Agent(object):
    """``python -m etcdfleet_agents.<module>`` (default the registrator) with the given etcd and
    options; ``start`` waits for the log line ``ready``."""

    def __init__(self, endpoints, api, args=(), env=None, log_path=None, python=None, module='registrator',
                 ready='resync (start)'):
        self.module = module
        self.ready = ready
        self.endpoints = list(endpoints)
        self.api = api
        self.args = list(args)
        self.env = dict(env or {})
        self.log_path = log_path
        self.python = python or sys.executable
        self.process = None
        self._log = None
        self._offset = 0

    def command(self):
        return [self.python, '-m', 'etcdfleet_agents.%s' % self.module] + self.args

    def environ(self):
        env = dict(os.environ)
        for key in list(env):
            if key.startswith('ETCDFLEET_'):
                del env[key]
        env.update({
            'PYTHONPATH': os.pathsep.join([os.path.join(ROOT, 'agents'), os.path.join(ROOT, 'playbooks', 'collections')]),
            'ETCDFLEET_ENDPOINTS': ','.join(self.endpoints),
            'ETCDFLEET_API_VERSION': self.api,
            'PYTHONUNBUFFERED': '1',
        })
        env.update(self.env)
        return env

    def start(self, wait=True, timeout=30):
        if self.log_path:
            self._offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            self._log = open(self.log_path, 'ab')
        self.process = subprocess.Popen(self.command(), env=self.environ(), stdin=subprocess.DEVNULL,
                                        stdout=self._log or subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL)
        if wait:
            self.wait_log(self.ready, timeout=timeout)
        return self

    def run_once(self, timeout=60):
        return subprocess.run(self.command() + ['--once'], env=self.environ(), capture_output=True, text=True, check=False,
                              timeout=timeout)

    def log(self):
        """What this run of the agent has logged so far."""
        if not self.log_path or not os.path.exists(self.log_path):
            return ''
        with open(self.log_path, 'rb') as handle:
            handle.seek(self._offset)
            return handle.read().decode('utf-8', 'replace')

    def wait_log(self, text, timeout=30, count=1):
        def found():
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError('agent exited with %s:\n%s' % (self.process.returncode, self.log()))
            return self.log().count(text) >= count
        return wait_for(found, timeout=timeout, interval=0.05, what='agent log line %r' % text)

    def signal(self, sig):
        self.process.send_signal(sig)

    def kill(self):
        """SIGKILL: no cleanup of any kind."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._close()

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            self._close()
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError('agent did not stop within %ss of SIGTERM:\n%s' % (timeout, self.log()))
        finally:
            self._close()
        return code

    def rss_kib(self):
        """Resident memory of the agent process (VmRSS) in KiB."""
        with open('/proc/%d/status' % self.process.pid) as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        return None

    def _close(self):
        if self._log is not None:
            self._log.close()
            self._log = None


class DockerSocketProxy(object):
    """A Unix socket forwarding to Docker's, which a test closes (every connection dropped, the
    socket removed: Docker is unreachable) and opens again."""

    def __init__(self, path, target='/var/run/docker.sock'):
        self.path = path
        self.target = target
        self.url = 'unix://%s' % path
        self._listener = None
        self._connections = []
        self._lock = threading.Lock()

    def open(self):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener):
        while True:
            try:
                client, dummy = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.extend([client, upstream])
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if os.path.exists(self.path):
            os.unlink(self.path)
        with self._lock:
            connections, self._connections = self._connections, []
        for end in connections:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()
