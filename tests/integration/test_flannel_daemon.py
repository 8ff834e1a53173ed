# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flannel daemon on real kernels: hosts in network namespaces, a real etcd, real vxlan.

Each host is a network namespace on one bridge (the "public" network, where etcd listens). The
daemon runs in it as on a node (``python -m etcdfleet_agents.flannel``); a "container" is a
namespace behind a veth pair whose host end carries FLANNEL_SUBNET, as Docker's bridge would. A
third host is made by hand with iproute2 and its lease written as flanneld writes it (the data of
tests/../shared reference: key ``10.1.200.0-24``, value with PublicIP, BackendType and VtepMAC),
standing for a real flanneld on the same network.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from etcd_server import EtcdServer, etcd_binary

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient, EtcdKeyNotFound

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENTS = os.path.join(REPO, 'agents')
COLLECTIONS = os.path.join(REPO, 'playbooks', 'collections')
CONFIG = '{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}}'
HAND_MAC = '56:83:9e:b8:2d:a3'

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='network namespaces need root')


def sh(*argv, check=True):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          check=False, timeout=30)
    if check and proc.returncode != 0:
        raise AssertionError('%s: %s' % (' '.join(argv), proc.stdout))
    return proc.stdout


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('not within %.1fs: %s' % (timeout, what))
        time.sleep(0.05)


class Host(object):
    """A namespace on the public bridge, with a container namespace behind it."""

    def __init__(self, lab, letter, address):
        self.lab = lab
        self.ns = '%s%s' % (lab.tag, letter)
        self.container = '%s%sc' % (lab.tag, letter)
        self.address = address
        self.subnet_file = os.path.join(lab.workdir, '%s.env' % letter)
        self.state_file = os.path.join(lab.workdir, 'state', '%s.env' % letter)
        self.log_path = os.path.join(lab.workdir, '%s.log' % letter)
        self.process = None
        self.subnet = None
        sh('ip', 'netns', 'add', self.ns)
        sh('ip', 'netns', 'add', self.container)
        outside = '%s%s' % (lab.tag, letter)
        sh('ip', 'link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', self.ns)
        sh('ip', 'link', 'set', outside, 'master', lab.bridge, 'up')
        self.ip('addr', 'add', '%s/24' % address, 'dev', 'eth0')
        self.ip('link', 'set', 'eth0', 'up')
        self.ip('link', 'set', 'lo', 'up')
        self.run('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
        sh('ip', '-n', self.ns, 'link', 'add', 'cbr0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', self.container)
        sh('ip', '-n', self.container, 'link', 'set', 'lo', 'up')

    def ip(self, *args):
        return sh('ip', '-n', self.ns, *args)

    def run(self, *argv, check=True):
        return sh('ip', 'netns', 'exec', self.ns, *argv, check=check)

    def in_container(self, *argv, check=True):
        return sh('ip', 'netns', 'exec', self.container, *argv, check=check)

    # -- the daemon ---------------------------------------------------------------------------
    def start(self, *extra):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join((AGENTS, COLLECTIONS)),
                   ETCDFLEET_ENDPOINTS=self.lab.etcd.url, ETCDFLEET_API_VERSION=self.lab.api,
                   ETCDFLEET_ENV_FILE='')
        env.pop('NOTIFY_SOCKET', None)
        argv = ['ip', 'netns', 'exec', self.ns, sys.executable, '-m', 'etcdfleet_agents.flannel',
                '--prefix', self.lab.prefix, '--ip-masq', '--subnet-file', self.subnet_file,
                '--state-file', self.state_file,
                '--lease-ttl', str(self.lab.ttl)] + list(extra)
        log = open(self.log_path, 'a')
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

    def stop(self, sig=signal.SIGTERM):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=20)
        self.process = None

    def log(self):
        with open(self.log_path) as handle:
            return handle.read()

    def read_subnet(self, timeout=20):
        """FLANNEL_SUBNET once the daemon wrote it; the container then gets the subnet's .2."""
        def subnet():
            try:
                with open(self.subnet_file) as handle:
                    values = dict(line.strip().split('=', 1) for line in handle if '=' in line)
            except OSError:
                return None
            return values
        values = wait_until(subnet, timeout, 'the subnet file of %s\n%s' % (self.ns, self.log_path))
        return values

    def attach_container(self):
        """The container behind a veth whose host end carries FLANNEL_SUBNET (Docker's bip)."""
        values = self.read_subnet()
        bip = ipaddress.IPv4Interface(values['FLANNEL_SUBNET'])
        self.subnet = bip.network
        self.ip('addr', 'flush', 'dev', 'cbr0')
        self.ip('addr', 'add', str(bip), 'dev', 'cbr0')
        self.ip('link', 'set', 'cbr0', 'up', 'mtu', values['FLANNEL_MTU'])
        sh('ip', '-n', self.container, 'addr', 'flush', 'dev', 'eth0')
        sh('ip', '-n', self.container, 'addr', 'add', '%s/%d' % (self.container_ip, bip.network.prefixlen),
           'dev', 'eth0')
        sh('ip', '-n', self.container, 'link', 'set', 'eth0', 'up', 'mtu', values['FLANNEL_MTU'])
        sh('ip', '-n', self.container, 'route', 'replace', 'default', 'via', str(bip.ip))
        return values

    @property
    def container_ip(self):
        return str(self.subnet.network_address + 2)

    def vtep_mac(self, device='flannel.1'):
        return json.loads(self.ip('-j', 'link', 'show', device))[0]['address']

    def routes(self):
        return self.ip('route', 'show', 'dev', 'flannel.1')


class Lab(object):
    def __init__(self, workdir, api, ttl):
        worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')
        index = int(''.join(ch for ch in worker if ch.isdigit()) or 0)
        self.tag = 'efl%d' % index
        self.bridge = '%sbr' % self.tag
        self.public = ipaddress.IPv4Network('198.18.%d.0/24' % (100 + index))
        self.workdir = workdir
        self.api = api
        self.ttl = ttl
        self.prefix = '/it-flannel-%s/network' % uuid.uuid4().hex[:8]
        self.hosts = []
        self.cleanup()
        sh('ip', 'link', 'add', self.bridge, 'type', 'bridge')
        sh('ip', 'addr', 'add', '%s/24' % (self.public.network_address + 1), 'dev', self.bridge)
        sh('ip', 'link', 'set', self.bridge, 'up')
        # this machine may filter bridged traffic (br_netfilter under Docker's FORWARD policy)
        sh('iptables', '-w', '5', '-I', 'FORWARD', '1', '-i', self.bridge, '-o', self.bridge, '-j', 'ACCEPT')
        self.etcd = EtcdServer(name='it-flannel', host=str(self.public.network_address + 1),
                               workdir=os.path.join(workdir, 'etcd'))
        os.makedirs(self.etcd.workdir)
        self.etcd.start()
        self.client = EtcdClient(endpoints=[self.etcd.url], api_version=api)

    def host(self, letter):
        host = Host(self, letter, str(self.public.network_address + 2 + len(self.hosts)))
        self.hosts.append(host)
        return host

    def key(self, *parts):
        return '/'.join((self.prefix,) + parts)

    def leases(self):
        try:
            root = self.client.get(self.key('subnets'), recursive=True)
        except EtcdKeyNotFound:
            return {}
        return dict((node.key.rsplit('/', 1)[1], node) for node in root.leaves())

    def cleanup(self):
        namespaces = sh('ip', 'netns', 'list', check=False).split()
        for name in namespaces:
            if name.startswith(self.tag):
                sh('ip', 'netns', 'del', name, check=False)
        sh('ip', 'link', 'del', self.bridge, check=False)
        while sh('iptables', '-w', '5', '-D', 'FORWARD', '-i', self.bridge, '-o', self.bridge, '-j', 'ACCEPT',
                 check=False).strip() == '':
            pass

    def close(self):
        for host in self.hosts:
            host.stop(signal.SIGKILL)
        self.client.close()
        self.etcd.stop()
        self.cleanup()


@pytest.fixture
def lab_factory(tmp_path):
    if etcd_binary() is None:
        pytest.fail('the etcd binary is not installed (apt-get install etcd-server)')
    pytest.importorskip('pyroute2')
    labs = []

    def make(api='v2', ttl=86400):
        lab = Lab(str(tmp_path), api, ttl)
        labs.append(lab)
        return lab
    yield make
    for lab in labs:
        lab.close()


def pings(source, target_ip):
    return source.in_container('ping', '-c', '1', '-W', '2', target_ip, check=False).count(' 0% packet loss') == 1


def source_seen(receiver_ns, listen_ip, sender):
    """The source address a UDP datagram from ``sender``'s container arrives with at
    ``listen_ip`` in ``receiver_ns``."""
    code = ('import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n'
            's.bind((sys.argv[1],9999));s.settimeout(10)\nprint(s.recvfrom(100)[1][0])\n')
    argv = ['ip', 'netns', 'exec', receiver_ns] if receiver_ns else []
    listener = subprocess.Popen(argv + [sys.executable, '-c', code, listen_ip], stdout=subprocess.PIPE,
                                universal_newlines=True)
    try:
        deadline = time.monotonic() + 10
        while listener.poll() is None and time.monotonic() < deadline:
            sender.in_container(sys.executable, '-c', 'import socket,sys;socket.socket(socket.AF_INET,'
                                'socket.SOCK_DGRAM).sendto(b"x",(sys.argv[1],9999))', listen_ip)
            time.sleep(0.2)
        out, _err = listener.communicate(timeout=5)
    finally:
        if listener.poll() is None:
            listener.kill()
    return out.strip()


@pytest.mark.parametrize('api', ['v2', 'v3'])
def test_containers_on_two_hosts_reach_each_other_by_their_own_addresses(lab_factory, api):
    lab = lab_factory(api)
    lab.client.set(lab.key('config'), CONFIG)
    a, b = lab.host('a'), lab.host('b')
    a.start()
    b.start()
    values = a.attach_container()
    b.attach_container()
    assert values['FLANNEL_NETWORK'] == '10.1.0.0/16'
    assert values['FLANNEL_MTU'] == '1450'
    assert values['FLANNEL_IPMASQ'] == 'true'
    assert a.subnet != b.subnet and a.subnet.prefixlen == 24

    # flannel's data: one lease per host, flannel's JSON, a 24 h TTL
    leases = lab.leases()
    assert sorted(leases) == sorted(['%s-24' % a.subnet.network_address, '%s-24' % b.subnet.network_address])
    node = leases['%s-24' % a.subnet.network_address]
    assert node.value == ('{"PublicIP":"%s","BackendType":"vxlan","BackendData":{"VtepMAC":"%s"}}'
                          % (a.address, a.vtep_mac()))
    assert 86000 < node.ttl <= 86400

    # the seed's check, both ways, and the sender's own address on arrival
    wait_until(lambda: pings(a, b.container_ip), 5, 'a ping from a to b')
    assert pings(b, a.container_ip)
    assert source_seen(b.container, b.container_ip, a) == a.container_ip
    # leaving the overlay: masqueraded to the host's address
    assert source_seen(None, str(lab.public.network_address + 1), a) == a.address
    # the route as flanneld 0.12 makes it
    assert '%s via %s proto 125 onlink' % (b.subnet, b.subnet.network_address) in a.routes()

    # etcd away for a while: the overlay keeps working, and the daemons follow again once it is back
    lab.etcd.halt()
    time.sleep(3)
    assert pings(a, b.container_ip) and pings(b, a.container_ip)
    assert a.process.poll() is None and b.process.poll() is None
    lab.etcd.resume()
    lab.client.set(lab.key('subnets', '10.1.250.0-24'),
                   '{"PublicIP":"198.18.1.98","BackendType":"vxlan","BackendData":{"VtepMAC":"56:83:9e:b8:2d:a5"}}')
    wait_until(lambda: '10.1.250.0/24' in a.routes() and '10.1.250.0/24' in b.ip('route'), 15,
               'a lease written after the outage routed on both hosts')


def test_leases_follow_restarts_deletions_expiry_and_a_hand_made_flanneld(lab_factory):
    lab = lab_factory('v2', ttl=6)
    lab.client.set(lab.key('config'), CONFIG)
    a, b = lab.host('a'), lab.host('b')
    a.start()
    b.start()
    a.attach_container()
    b.attach_container()
    wait_until(lambda: pings(a, b.container_ip), 5, 'a ping from a to b')

    # a restarted host keeps its subnet and its VtepMAC
    subnet, mac = a.subnet, a.vtep_mac()
    a.stop()
    a.start()
    wait_until(lambda: a.log().count('leased %s for' % subnet) == 2, 10, 'the restarted daemon')
    assert a.read_subnet()['FLANNEL_SUBNET'] == '%s/24' % (subnet.network_address + 1)
    assert a.vtep_mac() == mac
    assert len(lab.leases()) == 2

    # a peer made by hand as flanneld 0.12 does, with its lease as flanneld writes it
    c = lab.host('c')
    c.ip('link', 'add', 'flannel.1', 'type', 'vxlan', 'id', '1', 'local', c.address, 'dev', 'eth0', 'dstport',
         '8472', 'nolearning')
    c.ip('link', 'set', 'flannel.1', 'address', HAND_MAC, 'mtu', '1450', 'up')
    c.ip('addr', 'add', '10.1.200.0/32', 'dev', 'flannel.1')
    for peer in (a, b):
        peer_mac = peer.vtep_mac()
        c.ip('neigh', 'replace', str(peer.subnet.network_address), 'lladdr', peer_mac, 'dev', 'flannel.1',
             'nud', 'permanent')
        sh('bridge', '-n', c.ns, 'fdb', 'replace', peer_mac, 'dev', 'flannel.1', 'dst', peer.address, 'self',
           'permanent')
        c.ip('route', 'replace', str(peer.subnet), 'via', str(peer.subnet.network_address), 'dev', 'flannel.1',
             'onlink')
    lab.client.set(lab.key('subnets', '10.1.200.0-24'),
                   '{"PublicIP":"%s","BackendType":"vxlan","BackendData":{"VtepMAC":"%s"}}' % (c.address, HAND_MAC))
    with open(c.subnet_file, 'w') as handle:
        handle.write('FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.200.1/24\nFLANNEL_MTU=1450\n'
                     'FLANNEL_IPMASQ=true\n')
    c.attach_container()
    wait_until(lambda: pings(a, c.container_ip), 3, 'a ping from a to the hand-made host')
    assert pings(c, b.container_ip)
    assert 'lladdr %s PERMANENT' % HAND_MAC in a.ip('neigh', 'show', 'dev', 'flannel.1')
    fdb = sh('bridge', '-n', a.ns, 'fdb', 'show', 'dev', 'flannel.1')
    assert '%s dst %s self permanent' % (HAND_MAC, c.address) in fdb

    # garbage among the leases is skipped with one warning, and changes nothing
    lab.client.set(lab.key('subnets', '10.1.201.0-24'), '{"PublicIP":"$(reboot)","BackendType":"vxlan"}')
    lab.client.set(lab.key('subnets', 'not-a-subnet'), 'x')
    time.sleep(1)
    assert a.log().count('10.1.201.0-24: skipped') == 1
    assert a.log().count('not-a-subnet: skipped: bad subnet key') == 1
    assert '10.1.201.0' not in a.routes()

    # a deleted lease: its host leases again (its subnet, when still free) and says so
    old = b.subnet
    lab.client.delete(lab.key('subnets', '%s-24' % old.network_address))
    wait_until(lambda: 'leased %s for %s (the lease %s was lost)' % (old, b.address, old) in b.log(), 5,
               'b leasing again')
    assert b.log().count('was deleted or expired: taking a new one') == 1
    assert '%s-24' % old.network_address in lab.leases()

    # a lease taken over by another host: its host takes another subnet and says Docker must follow
    lab.client.set(lab.key('subnets', '%s-24' % old.network_address),
                   '{"PublicIP":"198.18.1.99","BackendType":"vxlan","BackendData":{"VtepMAC":"56:83:9e:b8:2d:a4"}}')
    wait_until(lambda: b.read_subnet()['FLANNEL_SUBNET'] != '%s/24' % (old.network_address + 1), 5,
               'b on a new subnet')
    assert 'was taken by 198.18.1.99: taking a new one' in b.log()
    assert "Docker's bridge must follow" in b.log()
    b.attach_container()
    assert b.subnet != old
    wait_until(lambda: str(b.subnet) in a.routes(), 2, "a's route to b's new subnet")
    wait_until(lambda: pings(a, b.container_ip), 3, 'a ping from a to b on its new subnet')

    # a host that dies: its lease expires (TTL 6 s here) and its entries leave the others
    b.stop(signal.SIGKILL)
    wait_until(lambda: str(b.subnet) not in a.routes(), lab.ttl + 3, "b's route gone from a after expiry")
    assert b.vtep_mac() not in a.ip('neigh', 'show', 'dev', 'flannel.1')
    # the living renew theirs
    assert '%s-24' % a.subnet.network_address in lab.leases()
    assert 'renewed the lease %s' % a.subnet in a.log()

    # back after its lease expired and with /run emptied (a reboot): the same subnet again
    os.unlink(b.subnet_file)
    b.start()
    assert b.read_subnet()['FLANNEL_SUBNET'] == '%s/24' % (b.subnet.network_address + 1)
    wait_until(lambda: str(b.subnet) in a.routes(), 3, "a's route to b, back")


def test_a_config_without_backend_runs_vxlan_and_says_what_flanneld_would_do(lab_factory):
    lab = lab_factory('v3')
    a = lab.host('a')
    a.start()
    wait_until(lambda: 'no network config' in a.log(), 10, 'the daemon waiting for its config')
    lab.client.set(lab.key('config'), '{ "Network": "10.1.0.0/16" }')
    a.read_subnet()
    log = a.log()
    assert 'names no Backend: running the vxlan backend; a real flanneld would run udp' in log
    assert log.count('names no Backend') == 1
    assert json.loads(lab.leases().popitem()[1].value)['BackendType'] == 'vxlan'


def test_a_second_host_racing_for_leases_never_collides(lab_factory):
    lab = lab_factory('v3')
    lab.client.set(lab.key('config'), '{"Network": "10.9.0.0/22", "SubnetLen": 24, '
                                      '"Backend": {"Type": "host-gw"}}')
    hosts = [lab.host(letter) for letter in 'abc']
    for host in hosts:
        host.start()
    subnets = [host.read_subnet()['FLANNEL_SUBNET'] for host in hosts]
    assert len(set(subnets)) == 3
    # host-gw: a direct route to each peer's subnet through its public address
    for host in hosts:
        routes = host.ip('route', 'show', 'proto', '125')
        wait_until(lambda host=host: host.ip('route', 'show', 'proto', '125').count(' via ') == 2, 3,
                   'host-gw routes on %s' % host.ns)
        assert 'flannel' not in routes


@pytest.mark.parametrize('api', ['v2', 'v3'])
def test_sigterm_stops_at_once_while_the_watch_waits(lab_factory, api):
    """systemd kills a daemon that takes 20 s to stop; the watch's long read must not hold it."""
    lab = lab_factory(api)
    lab.client.set(lab.key('config'), CONFIG)
    a = lab.host('a')
    a.start()
    a.read_subnet()
    time.sleep(3)  # the watch is now in a read that lasts until its idle timeout
    started = time.monotonic()
    process = a.process
    a.stop()
    took = time.monotonic() - started
    assert process.returncode == 0, a.log()
    assert took < 5, 'SIGTERM took %.1f s\n%s' % (took, a.log())
