# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run fleet daemons in-process against a real etcd, with fake systemd (tests and benchmarks)."""

from __future__ import annotations

import argparse
import threading
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient

from etcdfleet_agents.daemons.fleet import FleetDaemon
from fake_systemd import FakeSystemd


def daemon_args(prefix, machine_id, ttl=2, metadata='', extra=()):
    parser = argparse.ArgumentParser()
    parser.add_argument('--once', action='store_true')
    FleetDaemon.add_arguments(parser)
    argv = ['--prefix', prefix, '--machine-id', machine_id, '--public-ip', '10.0.0.%d' % (hash(machine_id) % 200 + 1),
            '--machine-ttl', str(ttl), '--metadata', metadata, '--gc-grace', '3',
            '--state-interval', '0.2'] + list(extra)
    return parser.parse_args(argv)


class Node(object):
    """One machine: a FleetDaemon with a FakeSystemd, served in a thread."""

    def __init__(self, url, api, prefix, machine_id, ttl=2, metadata='', extra=()):
        """``url``: one etcd client URL or a list of them (tried in that order)."""
        self.endpoints = list(url) if isinstance(url, (list, tuple)) else [url]
        self.url = self.endpoints[0]
        self.api = api
        self.systemd = FakeSystemd()
        self.machine_id = machine_id
        self.args = daemon_args(prefix, machine_id, ttl, metadata, extra)
        self.daemon = None
        self.thread = None

    def client(self, **overrides):
        return EtcdClient(endpoints=self.endpoints, api_version=self.api, **overrides)

    def start(self):
        self.daemon = FleetDaemon(args=self.args, environ={}, client_factory=self.client, systemd=self.systemd)
        self.thread = threading.Thread(target=self.daemon.retrying, args=(self.daemon.serve,), daemon=True)
        self.thread.start()
        return self

    def kill(self):
        """Stop without any goodbye (as if the machine died)."""
        self.daemon.stop()
        self.thread.join(10)
        for thread in self.daemon.threads:
            thread.join(10)

    def stop(self):
        """A clean stop of the daemon (SIGTERM)."""
        self.daemon.stop()
        self.thread.join(10)
        self.daemon.cleanup()

    def running(self):
        return sorted(n for n, pid in self.systemd.active.items() if pid != 'failed')


def wait_until(predicate, timeout=15.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
