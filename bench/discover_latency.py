# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docker-discover latency on loopback: a real etcd, a real HAProxy (master-worker, reloaded with
SIGUSR2) and the watcher as a child process with the role's template and settings.

key -> routed         a backend's key is written; until HAProxy's new worker lists the server
                      (runtime socket), and until a request through HAProxy is answered by it
docker run -> answer  `docker run -p 127.0.0.1::8000` of the busybox image, its key written as soon
                      as `docker run` returns (the registrator's job), until a request through
                      HAProxy is answered by the new container (skipped without Docker)

Prints p50/p99/max over --count backends (default 30) and the watcher's resident memory.
``--reload master-cli`` has the watcher ask HAProxy's master CLI (``haproxy -S``) for each reload,
as it does on the nodes under its own account, instead of running ``kill -USR2``.

    .venv/bin/python bench/discover_latency.py [--count 30] [--api v2|v3] [--debounce 0.2]
                                               [--reload signal|master-cli]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, '..', 'tests'), os.path.join(HERE, '..', 'agents'),
                os.path.join(HERE, '..', 'playbooks', 'collections')]

from etcd_server import EtcdServer, free_port  # noqa: E402
from haproxy_harness import (Backend, HaproxyProcess, WatcherProcess, http_get,  # noqa: E402
                             wait_for, watcher_settings)
from registrator_helpers import published_port  # noqa: E402

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient  # noqa: E402
from etcdfleet_agents.haproxy.process import runtime_command  # noqa: E402

IMAGE = os.environ.get('ETCDFLEET_WORKLOAD_IMAGE', 'etcdfleet/busybox:latest')


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float('nan')
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def summary(name, values):
    ms = [v * 1000 for v in values]
    print('%-34s n=%-3d p50 %7.1f ms   p99 %7.1f ms   max %7.1f ms' % (
        name, len(ms), percentile(ms, 0.5), percentile(ms, 0.99), max(ms) if ms else float('nan')))


def answered_by(port, name, deadline):
    while time.monotonic() < deadline:
        try:
            if http_get(port, timeout=1) == name:
                return time.monotonic()
        except OSError:
            pass
    raise RuntimeError('%s never answered through HAProxy' % name)


def server_listed(haproxy, server_prefix, deadline):
    while time.monotonic() < deadline:
        try:
            if server_prefix in runtime_command(haproxy.runtime_socket, 'show servers state', timeout=1):
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError('%s never listed by HAProxy' % server_prefix)


def docker_usable():
    if not shutil.which('docker'):
        return False
    done = subprocess.run(['docker', 'image', 'inspect', IMAGE], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False)
    return done.returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=30)
    parser.add_argument('--api', choices=['v2', 'v3'], default='v2')
    parser.add_argument('--debounce', type=float, default=0.2, help='the role default is 0.2 s')
    parser.add_argument('--no-docker', action='store_true')
    parser.add_argument('--reload', choices=['signal', 'master-cli'], default='signal',
                        help='how the watcher reloads HAProxy (the nodes: master-cli)')
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix='bench-discover-')
    etcd = EtcdServer(name='bench-discover', workdir=os.path.join(workdir, 'etcd')).start()
    haproxy = HaproxyProcess(workdir, master_cli=args.reload == 'master-cli').start()
    port = free_port()
    settings = watcher_settings(haproxy, [{'name': 'bench', 'port': port, 'mode': 'http'},
                                          {'name': 'docker', 'port': free_port(), 'mode': 'http'}],
                                free_port(), debounce=args.debounce, max_delay=max(2.0, args.debounce))
    if haproxy.master_socket:
        settings['haproxy']['master_socket'] = haproxy.master_socket
    docker_port = settings['services'][1]['port']
    watcher = WatcherProcess(workdir, settings, etcd.url, args.api).start()
    backends = []
    containers = []
    rss = []
    client = EtcdClient(endpoints=[etcd.url], api_version=args.api)
    try:
        wait_for(lambda: 'reloaded HAProxy' in watcher.log(), 20, what='the first reload')
        listed, routed = [], []
        for index in range(args.count):
            backend = Backend('b%02d' % index, workdir).start()
            backends.append(backend)
            key_id = 'bench-host:b%02d:8000' % index
            started = time.monotonic()
            client.set('/services/bench/%s' % key_id, backend.value)
            deadline = started + 30
            listed.append(server_listed(haproxy, key_id, deadline) - started)
            routed.append(answered_by(port, backend.name, deadline) - started)
            rss.append(watcher.rss_kib())
        print('docker-discover latency, etcd %s, debounce %.2f s, reload by %s, %d backends (loopback)'
              % (args.api, args.debounce, args.reload, args.count))
        summary('key -> server in new HAProxy worker', listed)
        summary('key -> first answer through HAProxy', routed)

        if not args.no_docker and docker_usable():
            run_to_answer, run_only = [], []
            for index in range(args.count):
                name = 'bench-discover-%d-%02d' % (os.getpid(), index)
                started = time.monotonic()
                subprocess.run(['docker', 'run', '-d', '--name', name, '--hostname', name, '-p', '127.0.0.1::8000',
                                IMAGE, 'sh', '-c', 'mkdir -p /www && hostname > /www/index.html && '
                                'exec httpd -f -p 8000 -h /www'],
                               stdout=subprocess.DEVNULL, check=True)
                containers.append(name)
                run_only.append(time.monotonic() - started)
                client.set('/services/docker/bench-host:%s:8000' % name,
                           '127.0.0.1:%d' % published_port(name, '8000/tcp'))
                run_to_answer.append(answered_by(docker_port, name, started + 60) - started)
                rss.append(watcher.rss_kib())
            summary('docker run -> first answer', run_to_answer)
            summary('  of which `docker run` itself', run_only)
        else:
            print('docker run -> first answer: skipped (no Docker or no %s image)' % IMAGE)
        reloads = haproxy.reloads()
        print('HAProxy reloads: %d; watcher RSS: max %.1f MiB, last %.1f MiB'
              % (reloads, max(rss) / 1024.0, rss[-1] / 1024.0))
    finally:
        client.close()
        watcher.stop()
        for name in containers:
            subprocess.run(['docker', 'rm', '-f', name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
        for backend in backends:
            backend.stop()
        haproxy.stop()
        etcd.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
