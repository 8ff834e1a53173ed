# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registration latency of the registrator agent and its resident memory.

Starts a throw-away etcd on loopback and the agent as a real process against this machine's
Docker engine, then runs containers (from the workload image, with a published port) one after
another. A watcher on the prefix notes when each key appears; the latency of a container is the
time from ``docker run -d`` returning to its key existing in etcd (0 when the key was there
before ``docker run`` returned). The same is measured for ``docker rm -f`` returning to the key
being gone. Prints p50/p90/p99/max per API version and the agent's resident memory (VmRSS now,
VmHWM peak) with all containers registered.

Usage: python bench/registrator_latency.py [--containers 60] [--api v2|v3|both]
Needs: the etcd binary (etcd-server), the Docker engine, the workload image (make images).
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, 'tests'), os.path.join(ROOT, 'playbooks', 'collections')]

from etcd_server import EtcdServer  # noqa: E402  pylint: disable=wrong-import-position
from registrator_helpers import Agent, Containers, docker_available  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient, EtcdError  # noqa: E402  pylint: disable=wrong-import-position


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float('nan')
    index = min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[index]


class KeyWatcher(threading.Thread):
    """Notes the monotonic time each key below the prefix is created or deleted."""

    def __init__(self, client, prefix):
        super(KeyWatcher, self).__init__(daemon=True)
        self.client = client
        self.prefix = prefix
        self.created = {}
        self.deleted = {}
        self.stop = threading.Event()
        self.start_index = client.revision('/') + 1

    def run(self):
        try:
            for event in self.client.watch_iter(self.prefix, recursive=True, index=self.start_index, stop=self.stop):
                if event is None:
                    continue
                now = time.monotonic()
                if event.action in ('create', 'update', 'set'):
                    self.created.setdefault(event.key, now)
                elif event.action in ('delete', 'expire'):
                    self.deleted.setdefault(event.key, now)
        except EtcdError:
            if not self.stop.is_set():
                raise


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def rss(pid):
    values = {}
    with open('/proc/%d/status' % pid) as handle:
        for line in handle:
            if line.startswith(('VmRSS:', 'VmHWM:')):
                name, amount = line.split()[:2]
                values[name.rstrip(':')] = int(amount) / 1024.0
    return values


def summary(name, values):
    ms = [v * 1000 for v in values]
    return '%-28s n=%-3d p50 %6.1f ms  p90 %6.1f ms  p99 %6.1f ms  max %6.1f ms  mean %6.1f ms' % (
        name, len(ms), percentile(ms, 0.50), percentile(ms, 0.90), percentile(ms, 0.99), max(ms),
        statistics.mean(ms))


def run(api, count, workdir):
    prefix = '/bench/services'
    hostname = 'bench'
    server = EtcdServer(name='bench-%s' % api, workdir=os.path.join(workdir, 'etcd-%s' % api))
    server.start()
    containers = Containers(tag='etcdfleet-bench-%s' % os.urandom(3).hex())
    agent = Agent([server.url], api, args=['--prefix', prefix, '--hostname', hostname, '--advertise-ip', '10.99.0.9',
                                           '--ttl', '30', '--resync', '60'],
                  log_path=os.path.join(workdir, 'agent-%s.log' % api))
    try:
        agent.start()
        watcher = KeyWatcher(EtcdClient([server.url], api_version=api), prefix)
        watcher.start()
        idle_rss = rss(agent.process.pid)
        up, down, missed = [], [], 0
        before_return = gone_before_return = 0
        for number in range(count):
            short = 'c%03d' % number
            key = '%s/busybox/%s:%s:80' % (prefix, hostname, containers.name(short))
            containers.run(short, ports=['80'])
            returned = time.monotonic()
            if not wait_until(lambda: key in watcher.created, 10):
                missed += 1
                continue
            latency = watcher.created[key] - returned
            if latency < 0:
                before_return += 1
            up.append(max(0.0, latency))
        loaded = rss(agent.process.pid)
        for number in range(count):
            short = 'c%03d' % number
            key = '%s/busybox/%s:%s:80' % (prefix, hostname, containers.name(short))
            containers.remove(short)
            returned = time.monotonic()
            if wait_until(lambda: key in watcher.deleted, 10):
                latency = watcher.deleted[key] - returned
                if latency < 0:
                    gone_before_return += 1
                down.append(max(0.0, latency))
            else:
                missed += 1
        watcher.stop.set()
        watcher.join(5)
        print('etcd API %s, %d containers, %d keys seen created, %d missed' % (api, count, len(watcher.created), missed))
        print('  ' + summary('docker run -> key exists', up))
        print('  ' + summary('docker rm -f -> key gone', down))
        print('  keys present before docker run returned: %d; gone before docker rm -f returned: %d'
              % (before_return, gone_before_return))
        print('  agent memory: VmRSS %.1f MB idle, %.1f MB with %d containers registered, peak VmHWM %.1f MB'
              % (idle_rss['VmRSS'], loaded['VmRSS'], count, loaded['VmHWM']))
        return up, loaded
    finally:
        containers.cleanup()
        if agent.process is not None:
            agent.stop()
        server.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--containers', type=int, default=60)
    parser.add_argument('--api', choices=['v2', 'v3', 'both'], default='both')
    args = parser.parse_args(argv)
    if args.containers < 1:
        parser.error('--containers must be at least 1')
    reason = docker_available()
    if reason:
        print('cannot run: %s' % reason, file=sys.stderr)
        return 1
    apis = ['v2', 'v3'] if args.api == 'both' else [args.api]
    with tempfile.TemporaryDirectory(prefix='registrator-bench-') as workdir:
        for api in apis:
            run(api, args.containers, workdir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
