# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet daemon: which registry changes wake it, fleetctl requests, bad settings (no etcd)."""

import os
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import EtcdEvent  # noqa: E402
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_keys import FleetKeys  # noqa: E402

from etcdfleet_agents.daemons.fleet import relevant  # noqa: E402
from fake_systemd import FakeSystemd  # noqa: E402

HERE, OTHER = 'a' * 32, 'b' * 32


def test_relevant_events():
    keys = FleetKeys('/f/')
    assert relevant(keys, EtcdEvent('update', '/f/job/a.service/target'))
    assert relevant(keys, EtcdEvent('update', '/f/job/a.service/target-state'))
    assert relevant(keys, EtcdEvent('expire', '/f/machines/%s/object' % HERE))
    assert relevant(keys, EtcdEvent('delete', '/f/lease/engine-leader'))
    assert not relevant(keys, EtcdEvent('update', '/f/job/a.service/job-state'))
    assert not relevant(keys, EtcdEvent('update', '/f/job/a.service/reason'))
    assert not relevant(keys, EtcdEvent('update', '/f/states/a.service/%s' % HERE))
    assert not relevant(keys, EtcdEvent('update', '/elsewhere/job/a.service/target'))


def test_watcher_answers_the_requests_a_resync_brings(tmp_path):
    """A watcher that skipped a backlog (catch-up) still answers fleetctl status/journal requests
    to its machine that were created meanwhile; requests to other machines are not its own."""
    import argparse
    import threading
    import time

    from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import EtcdNode
    from etcdfleet_agents.daemons import fleet

    mine = '/f/command/%s/r1' % HERE
    resync = EtcdEvent('resync', '/f/', EtcdNode('/f', dir=True, children=[
        EtcdNode('/f/command', dir=True, children=[
            EtcdNode('/f/command/%s' % HERE, dir=True, children=[EtcdNode(mine, '{"kind": "status"}')]),
            EtcdNode('/f/command/%s' % OTHER, dir=True, children=[
                EtcdNode('/f/command/%s/r2' % OTHER, '{"kind": "status"}')])]),
        EtcdNode('/f/job', dir=True)]), index=9)
    seen = {}

    class Client(object):
        endpoints = ['http://127.0.0.1:2379']

        def watch_iter(self, key, **kwargs):
            seen.update(kwargs)
            yield resync
            daemon.stopping.set()

        def close(self):
            pass

    parser = argparse.ArgumentParser()
    parser.add_argument('--once', action='store_true')
    fleet.FleetDaemon.add_arguments(parser)
    args = parser.parse_args(['--prefix', '/f/', '--machine-id', HERE, '--public-ip', '10.0.0.1',
                              '--unit-dir', str(tmp_path)])
    daemon = fleet.FleetDaemon(args=args, environ={}, client_factory=lambda **kw: Client(), systemd=FakeSystemd())
    answered = []
    done = threading.Event()
    daemon._answer = lambda key, value: (answered.append(key), done.set())
    daemon._watcher()
    assert done.wait(5)
    time.sleep(0.1)
    assert answered == [mine]
    assert seen['catch_up'] == fleet.CATCH_UP
    assert daemon.wake.is_set() and daemon.engine_wake.is_set()


@pytest.mark.parametrize('argv, message', [
    (['--machine-id', HERE, '--metadata', 'region'],
     "fleet: invalid machine metadata 'region': expected key=value pairs separated by commas\n"),
    (['--machine-id-file', '/nonexistent/machine-id'],
     'fleet: cannot read the machine ID from /nonexistent/machine-id: '),
])
def test_bad_settings_end_with_one_line_and_a_non_zero_exit(tmp_path, capsys, argv, message):
    from etcdfleet_agents import fleet

    environ = {'ETCDFLEET_ENDPOINTS': 'http://127.0.0.1:9'}
    code = fleet.main(['--once', '--unit-dir', str(tmp_path)] + argv, environ=environ)
    err = capsys.readouterr().err
    assert code == 2
    assert 'Traceback' not in err
    assert err.startswith(message) and err.count('\n') == 1
