# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docker-discover under churn on loopback: constant bounded load through HAProxy while backends
come and go, counting failed requests.

A real etcd, a real HAProxy (master-worker, reloaded with SIGUSR2) and the watcher as a child
process. The client sends --rate requests per second (open loop: each request starts on
schedule, on its own new connection, in a small thread pool) for --duration seconds. Every
--interval seconds one backend joins and one leaves, alternating the two ways a backend leaves:
its key deleted first and the process stopped afterwards (a clean stop), or the process killed
while its key is still there (a crash the registrator has not reported yet).

Prints requests sent, failed (target 0), latency p50/p99, HAProxy reloads and the watcher's RSS.

    .venv/bin/python bench/discover_churn.py [--rate 100] [--duration 60] [--interval 3] [--api v2]
"""

import argparse
import concurrent.futures
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, '..', 'tests'), os.path.join(HERE, '..', 'agents'),
                os.path.join(HERE, '..', 'playbooks', 'collections')]

from etcd_server import EtcdServer, free_port  # noqa: E402
from haproxy_harness import (Backend, HaproxyProcess, WatcherProcess, http_get,  # noqa: E402
                             wait_for, watcher_settings)

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient  # noqa: E402


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float('nan')
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rate', type=float, default=100.0, help='requests per second')
    parser.add_argument('--duration', type=float, default=60.0, help='seconds of load')
    parser.add_argument('--interval', type=float, default=3.0, help='seconds between changes')
    parser.add_argument('--backends', type=int, default=3, help='backends serving at any time')
    parser.add_argument('--mode', choices=['http', 'tcp'], default='http')
    parser.add_argument('--api', choices=['v2', 'v3'], default='v2')
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix='bench-churn-')
    etcd = EtcdServer(name='bench-churn', workdir=os.path.join(workdir, 'etcd')).start()
    haproxy = HaproxyProcess(workdir).start()
    port = free_port()
    settings = watcher_settings(haproxy, [{'name': 'churn', 'port': port, 'mode': args.mode}], free_port(),
                                debounce=0.2, max_delay=2.0, check={'inter': '2s', 'rise': 2, 'fall': 2})
    watcher = WatcherProcess(workdir, settings, etcd.url, args.api).start()
    client = EtcdClient(endpoints=[etcd.url], api_version=args.api)
    live = []
    everything = []
    results = []
    lock = threading.Lock()
    rss = []

    def key(backend):
        return '/services/churn/bench-host:%s:8000' % backend.name

    def add(serial):
        backend = Backend('c%03d' % serial, workdir).start()
        everything.append(backend)
        client.set(key(backend), backend.value)
        live.append(backend)

    def request():
        started = time.monotonic()
        try:
            http_get(port, timeout=5)
            outcome = None
        except Exception as exc:  # pylint: disable=broad-except
            outcome = '%s: %s' % (type(exc).__name__, exc)
        with lock:
            results.append((time.monotonic() - started, outcome))

    try:
        serial = 0
        for dummy in range(args.backends):
            add(serial)
            serial += 1
        wait_for(lambda: 'reloaded HAProxy' in watcher.log(), 20, what='the first reload')
        wait_for(lambda: len({http_get(port) for dummy in range(3 * args.backends)}) == args.backends, 20,
                 what='every backend answering')
        reloads_before = haproxy.reloads()
        stop = threading.Event()

        def churn():
            nonlocal serial
            crash = False
            while not stop.wait(args.interval):
                add(serial)
                serial += 1
                leaving = live.pop(0)
                if crash:
                    leaving.stop()                 # dies first ...
                    time.sleep(1.0)
                    client.delete(key(leaving))    # ... reported a second later
                else:
                    client.delete(key(leaving))    # deregistered first ...
                    time.sleep(1.0)
                    leaving.stop()                 # ... stopped a second later
                crash = not crash
                rss.append(watcher.rss_kib())
        changer = threading.Thread(target=churn)
        changer.start()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=32)
        interval = 1.0 / args.rate
        begin = time.monotonic()
        count = int(args.duration * args.rate)
        for index in range(count):
            delay = begin + index * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(request)
        pool.shutdown(wait=True)
        elapsed = time.monotonic() - begin
        stop.set()
        changer.join()
        failures = [outcome for dummy, outcome in results if outcome]
        latencies = [seconds * 1000 for seconds, outcome in results if not outcome]
        print('docker-discover under churn, etcd %s, %s mode, %.0f req/s for %.0f s, a change every %.1f s'
              % (args.api, args.mode, args.rate, args.duration, args.interval))
        print('requests: %d sent in %.1f s (%.1f/s), %d failed' % (len(results), elapsed, len(results) / elapsed,
                                                                   len(failures)))
        for outcome in sorted(set(failures))[:5]:
            print('  failure: %s (x%d)' % (outcome, failures.count(outcome)))
        print('latency of answered requests: p50 %.1f ms, p99 %.1f ms, max %.1f ms'
              % (percentile(latencies, 0.5), percentile(latencies, 0.99), max(latencies)))
        print('backends joined %d, left %d; HAProxy reloads during the load: %d'
              % (serial - args.backends, serial - args.backends, haproxy.reloads() - reloads_before))
        rss.append(watcher.rss_kib())
        print('watcher RSS: max %.1f MiB, last %.1f MiB' % (max(rss) / 1024.0, rss[-1] / 1024.0))
    finally:
        client.close()
        watcher.stop()
        for backend in everything:
            backend.stop()
        haproxy.stop()
        etcd.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
