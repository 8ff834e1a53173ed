# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flannel daemon's decisions, on a fake store and kernel (tests/integration/test_flannel_daemon.py
runs it on real namespaces and a real etcd)."""

from __future__ import annotations

import argparse
import ipaddress
import logging

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.flannel_network import (
    lease_value,
    parse_config,
    parse_lease,
    subnet_key,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.flannel_store import LeaseLost

from etcdfleet_agents.daemons.flannel import Flannel, read_subnet_file, renew_after, write_file
from etcdfleet_agents.network.links import Link

PREFIX = '/coreos.com/network'
ME = '192.0.2.2'
MY_MAC = '0a:00:00:00:00:02'


class FakeStore(object):
    config_key = PREFIX + '/config'
    subnets_key = PREFIX + '/subnets'

    def __init__(self, config_text, subnets):
        self.config_text = config_text
        self.subnets = list(subnets)       # handed out in this order
        self.acquired = []
        self.renew_error = None

    def lease_key(self, subnet):
        return '%s/%s' % (self.subnets_key, subnet_key(ipaddress.ip_network(subnet)))

    def config(self, default_backend=None):
        return parse_config(self.config_text, default_backend) if self.config_text else None

    def acquire(self, public_ip, backend_type, backend_data=None, ttl=None, config=None, previous=None):
        subnet = ipaddress.ip_network(self.subnets.pop(0))
        self.acquired.append((subnet, previous))
        return parse_lease(subnet, lease_value(public_ip, backend_type, backend_data))._replace(ttl=ttl)

    def renew(self, lease, ttl=None):
        if self.renew_error is not None:
            raise self.renew_error
        return lease


class FakeNetlink(object):
    def __init__(self):
        self.peers = None
        self.routes = None

    def link(self, name=None, index=None):
        return Link(name or 'eth0', 2, 1500, '0a:00:00:00:00:01')

    def link_of_address(self, address):
        return Link('eth0', 2, 1500, '0a:00:00:00:00:01') if address == ME else None

    def ensure_vxlan(self, name, wanted, mtu):
        return Link(name, 5, mtu, MY_MAC), ['created %s' % name]

    def ensure_only_address(self, index, network):
        return []

    def vxlan_peers(self, link, network, peers):
        self.peers = peers
        return []

    def direct_routes(self, link, network, peers):
        self.routes = peers
        return []

    def close(self):
        pass


class FakeIptables(object):
    def __init__(self):
        self.synced = []

    def sync(self, table, parent, chain, rules):
        self.synced.append((table, chain, rules))
        return []

    def remove(self, table, parent, chain):
        return False

    def forget(self):
        pass


class Client(object):
    endpoints = ['http://192.0.2.100:2379']

    def close(self):
        pass


def daemon_for(tmp_path, config='{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}}',
               subnets=('10.1.15.0/24', '10.1.16.0/24', '10.1.17.0/24'), ttl=86400):
    args = argparse.Namespace(prefix=PREFIX, public_ip=ME, iface=None, ip_masq=True, lease_ttl=ttl,
                              subnet_file=str(tmp_path / 'subnet.env'), state_file=str(tmp_path / 'state.env'))
    daemon = Flannel(args=args, environ={}, client=Client(), netlink=FakeNetlink(), iptables=FakeIptables())
    daemon.store = FakeStore(config, subnets)
    daemon.config = daemon.read_config()
    return daemon


def lease_of(subnet, public_ip, mac='0a:00:00:00:00:09', backend='vxlan'):
    data = {'VtepMAC': mac} if backend == 'vxlan' else None
    return PREFIX + '/subnets/' + subnet.replace('/', '-'), lease_value(public_ip, backend, data)


def test_a_lease_is_written_to_the_subnet_file_and_the_rules(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    daemon = daemon_for(tmp_path)
    daemon.take_lease('start')
    assert (tmp_path / 'subnet.env').read_text() == (
        'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.15.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n')
    assert 'leased 10.1.15.0/24 for 192.0.2.2 (start)' in caplog.text
    tables = [entry[:2] for entry in daemon.iptables.synced]
    assert tables == [('filter', 'ETCDFLEET-FLANNEL-FWD'), ('nat', 'ETCDFLEET-FLANNEL-NAT')]
    assert ['!', '-s', '10.1.0.0/16', '-d', '10.1.15.0/24', '-j', 'RETURN'] in daemon.iptables.synced[1][2]
    # the lease carries the device's MAC
    assert daemon.lease.vtep_mac == MY_MAC


def test_peers_are_every_other_valid_lease_of_the_same_backend_and_each_oddity_is_said_once(tmp_path, caplog):
    daemon = daemon_for(tmp_path)
    daemon.take_lease('start')
    values = dict([lease_of('10.1.15.0/24', ME, MY_MAC), lease_of('10.1.20.0/24', '192.0.2.3'),
                   lease_of('10.1.21.0/24', '192.0.2.4', backend='host-gw'),
                   lease_of('10.2.0.0/24', '192.0.2.5'),
                   (PREFIX + '/subnets/10.1.22.0-24', '{"PublicIP": "$(reboot)"}')])
    caplog.set_level(logging.WARNING)
    daemon.apply_peers(values)
    daemon.apply_peers(values)
    assert sorted(str(subnet) for subnet in daemon.netlink.peers) == ['10.1.20.0/24']
    assert daemon.netlink.peers[ipaddress.ip_network('10.1.20.0/24')] == ('0a:00:00:00:00:09', '192.0.2.3')
    assert caplog.text.count('host-gw lease of 192.0.2.4, this network runs vxlan') == 1
    assert caplog.text.count('10.2.0.0-24: skipped: the subnet is outside the Network') == 1
    assert caplog.text.count('10.1.22.0-24: skipped') == 1
    # a value that changes is said again
    values[PREFIX + '/subnets/10.1.22.0-24'] = 'not json'
    daemon.apply_peers(values)
    assert caplog.text.count('10.1.22.0-24: skipped') == 2


def test_a_lease_gone_from_the_watch_is_replaced_only_once_it_was_seen(tmp_path, caplog):
    daemon = daemon_for(tmp_path)
    daemon.take_lease('start')
    # the watch has not shown the fresh lease yet: nothing happens
    daemon.apply_peers({})
    assert len(daemon.store.acquired) == 1
    daemon.apply_peers(dict([lease_of('10.1.15.0/24', ME, MY_MAC)]))
    caplog.set_level(logging.INFO)
    daemon.apply_peers({})
    assert 'the lease 10.1.15.0/24 of this host was deleted or expired: taking a new one' in caplog.text
    assert daemon.lease.subnet == ipaddress.ip_network('10.1.16.0/24')
    # the subnet file's subnet is offered first (flanneld 0.12), and the new one is written there
    assert daemon.store.acquired[1][1] == ipaddress.ip_network('10.1.15.0/24')
    assert read_subnet_file(str(tmp_path / 'subnet.env')) == ipaddress.ip_network('10.1.16.0/24')
    assert "Docker's bridge must follow" in caplog.text


def test_a_lease_taken_by_another_host_is_replaced(tmp_path, caplog):
    daemon = daemon_for(tmp_path)
    daemon.take_lease('start')
    caplog.set_level(logging.WARNING)
    daemon.apply_peers(dict([lease_of('10.1.15.0/24', '192.0.2.7')]))
    assert 'was taken by 192.0.2.7: taking a new one' in caplog.text
    assert daemon.lease.subnet == ipaddress.ip_network('10.1.16.0/24')
    # the other host's lease is a peer now
    assert ipaddress.ip_network('10.1.15.0/24') in daemon.netlink.peers


def test_a_renewal_that_finds_the_lease_lost_takes_a_new_one(tmp_path, caplog):
    daemon = daemon_for(tmp_path)
    daemon.take_lease('start')
    daemon.store.renew_error = LeaseLost('lease x of 192.0.2.2 is gone (expired or deleted)')
    caplog.set_level(logging.WARNING)
    daemon.renew()
    assert 'is gone (expired or deleted): taking a new lease' in caplog.text
    assert len(daemon.store.acquired) == 2


def test_a_config_without_backend_runs_vxlan_and_says_so_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    daemon = daemon_for(tmp_path, config='{ "Network": "10.1.0.0/16" }')
    daemon.read_config()
    assert daemon.config.backend_type == 'vxlan'
    assert caplog.text.count('names no Backend: running the vxlan backend; a real flanneld would run udp') == 1


def test_host_gw_routes_peers_through_their_public_address(tmp_path):
    daemon = daemon_for(tmp_path, config='{"Network": "10.1.0.0/16", "Backend": {"Type": "host-gw"}}')
    daemon.take_lease('start')
    assert (tmp_path / 'subnet.env').read_text().splitlines()[2] == 'FLANNEL_MTU=1500'
    daemon.apply_peers(dict([lease_of('10.1.20.0/24', '192.0.2.3', backend='host-gw')]))
    assert daemon.netlink.routes == {ipaddress.ip_network('10.1.20.0/24'): '192.0.2.3'}


def test_settings_that_cannot_work_are_refused(tmp_path):
    args = argparse.Namespace(prefix=PREFIX, public_ip='192.0.2.9', iface=None, ip_masq=False, lease_ttl=60,
                              subnet_file=str(tmp_path / 'subnet.env'), state_file=str(tmp_path / 'state.env'))
    daemon = Flannel(args=args, environ={}, client=Client(), netlink=FakeNetlink(), iptables=FakeIptables())
    daemon.store = FakeStore('{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}}', ['10.1.1.0/24'])
    daemon.config = daemon.read_config()
    with pytest.raises(ValueError, match='no interface holds 192.0.2.9'):
        daemon.take_lease('start')


def test_renewal_times_and_files(tmp_path):
    assert renew_after(86400) == 82800
    assert renew_after(6) == 3
    path = str(tmp_path / 'run' / 'subnet.env')
    assert write_file(path, 'A=1\n') is True
    assert write_file(path, 'A=1\n') is False
    (tmp_path / 'bad.env').write_text('FLANNEL_SUBNET=$(reboot)\n')
    assert read_subnet_file(str(tmp_path / 'bad.env')) is None
    assert read_subnet_file(str(tmp_path / 'missing.env')) is None


def test_the_copy_on_disk_names_the_subnet_to_ask_for_after_a_reboot(tmp_path):
    (tmp_path / 'state.env').write_text('FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.77.1/24\n')
    daemon = daemon_for(tmp_path)
    daemon.take_lease('start')
    assert daemon.store.acquired[0][1] == ipaddress.ip_network('10.1.77.0/24')
    # both files hold the lease now
    assert (tmp_path / 'state.env').read_text() == (tmp_path / 'subnet.env').read_text()
