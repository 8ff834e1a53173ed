# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the fleet benchmarks: the lab's node containers and a registry client reaching them.

Nodes are the running containers named ``<prefix>-NN`` (``--prefix``, default the
ETCDFLEET_MOLECULE_NODES variable, else ``core``; the lab made by ``make lab`` names them
``etcdfleet-core-NN``: pass ``--prefix etcdfleet-core``). The registry is read from this machine
through the nodes' etcd client URLs on the Docker network.
"""

import argparse
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, 'playbooks', 'collections'), os.path.join(ROOT, 'agents')]

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient  # noqa: E402
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_store import FleetStore  # noqa: E402
from etcdfleet_agents.runtime import client_settings, read_env_file  # noqa: E402


def parser(description):
    result = argparse.ArgumentParser(description=description)
    result.add_argument('--prefix', default=os.environ.get('ETCDFLEET_MOLECULE_NODES', 'core'),
                        help='node container name prefix (containers <prefix>-NN)')
    result.add_argument('--api-version', default='v2', choices=['v2', 'v3'])
    return result


def docker(*args, check=True):
    proc = subprocess.run(['docker'] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False)
    if check and proc.returncode != 0:
        raise SystemExit('docker %s failed: %s' % (' '.join(args), proc.stderr.strip()))
    return proc.stdout.strip()


def nodes(prefix):
    names = docker('ps', '-a', '--format', '{{.Names}}').split()
    found = sorted(n for n in names if re.match(r'^%s-\d+$' % re.escape(prefix), n))
    if not found:
        raise SystemExit('no node containers named %s-NN' % prefix)
    return found


def node_ip(name):
    return docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', name).split()[0]


def machine_id(name):
    return docker('exec', name, 'cat', '/etc/machine-id')


def store(names, api_version='v2'):
    """A registry client reaching the nodes' etcd from this machine with the settings the daemons
    on the first node use (/etc/etcdfleet/etcd.env: endpoints, TLS files, credentials), its
    certificate files copied here."""
    directory = tempfile.mkdtemp(prefix='etcdfleet-bench-etcd-')
    atexit.register(shutil.rmtree, directory, True)
    env_file = os.path.join(directory, 'etcd.env')
    docker('cp', '%s:/etc/etcdfleet/etcd.env' % names[0], env_file)
    settings = client_settings(read_env_file(env_file, {}))
    for argument in ('ca_cert', 'client_cert', 'client_key'):
        if argument in settings:
            copy = os.path.join(directory, os.path.basename(settings[argument]))
            docker('cp', '%s:%s' % (names[0], settings[argument]), copy)
            settings[argument] = copy
    settings.update(api_version=api_version, timeout=3)
    return FleetStore(EtcdClient(**settings))


def service_rss(name, unit):
    """Resident memory in MB of the main process of ``unit`` on the node ``name``, as the kernel
    reports it (VmRSS), or None when the unit is not running."""
    pid = docker('exec', name, 'systemctl', 'show', '-p', 'MainPID', '--value', unit)
    if not pid or pid == '0':
        return None
    status = docker('exec', name, 'cat', '/proc/%s/status' % pid)
    rss = [line.split()[1] for line in status.splitlines() if line.startswith('VmRSS:')]
    return int(rss[0]) / 1024.0


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2.0


def wait(predicate, timeout, interval=0.02):
    """Call ``predicate`` until it returns a true value (returned) or ``timeout`` passes (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


class Lab(object):
    """The lab's node containers (``names``), their machine IDs (``ids``: machine ID -> container)
    and a registry client (``store``), for the options of ``parser()``."""

    def __init__(self, opts):
        self.names = nodes(opts.prefix)
        self.ids = dict((machine_id(n), n) for n in self.names)
        self.store = store(self.names, opts.api_version)

    def all_registered(self, timeout=120):
        """Wait until every node's machine is registered; False if it is not within ``timeout``."""
        return bool(wait(lambda: len(self.store.snapshot().machines) == len(self.names), timeout, 0.5))
