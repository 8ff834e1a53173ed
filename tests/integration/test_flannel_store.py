# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""FlannelStore against a real etcd (v2 and v3): config, leases, acquire, renew."""

from __future__ import annotations

import random
import threading

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient
from ansible_collections.etcdfleet.cluster.plugins.module_utils.flannel_network import (
    LEASE_TTL,
    FlannelConfigError,
    UnsupportedBackend,
    lease_value,
    parse_subnet_key,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.flannel_store import (
    FlannelStore,
    LeaseLost,
    NoFreeSubnet,
)

VXLAN = '{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}}'
# 10.7.0.0/26 in /29s: SubnetMin 10.7.0.8 .. SubnetMax 10.7.0.56, seven subnets
SMALL = '{"Network": "10.7.0.0/26", "SubnetLen": 29, "Backend": {"Type": "vxlan"}}'
# 10.8.0.0/26 in /28s: 10.8.0.16, 10.8.0.32, 10.8.0.48
TINY = '{"Network": "10.8.0.0/26", "Backend": {"Type": "host-gw"}}'


def mac(n):
    return {'VtepMAC': '02:00:00:00:%02x:%02x' % (n // 256, n % 256)}


@pytest.fixture
def stores(etcd_server, api, prefix):
    """A factory of FlannelStores, each on a client of its own (one per host)."""
    clients = []

    def make():
        client = EtcdClient(endpoints=[etcd_server.url], api_version=api)
        clients.append(client)
        return FlannelStore(client, prefix + '/coreos.com/network')
    yield make
    for client in clients:
        client.close()


@pytest.fixture
def store(stores):
    return stores()


def test_config_is_written_once_and_never_overwritten(store, oracle):
    assert store.config() is None
    assert store.write_config(VXLAN) is True
    assert oracle.get(store.config_key) == VXLAN
    assert store.write_config(TINY) is False
    assert oracle.get(store.config_key) == VXLAN
    config = store.config()
    assert (str(config.network), config.subnet_len, config.backend_type, config.vni) == ('10.1.0.0/16', 24, 'vxlan', 1)


def test_existing_config_of_another_writer_is_kept(store, oracle):
    oracle.put(store.config_key, '{ "Network": "10.1.0.0/16" }')
    assert store.write_config(VXLAN) is False
    assert oracle.get(store.config_key) == '{ "Network": "10.1.0.0/16" }'
    with pytest.raises(UnsupportedBackend) as info:
        store.config()
    assert info.value.defaulted and info.value.backend_type == 'udp'


def test_invalid_config_is_not_written(store, oracle):
    for text in ('{ "Network": "10.1.0.0/16" }', '{"Network": "10.1.0.0/30", "Backend": {"Type": "vxlan"}}', 'junk'):
        with pytest.raises(FlannelConfigError):
            store.write_config(text)
    assert oracle.get(store.config_key) is None


def test_acquire_writes_a_lease_as_flanneld_does(store, oracle):
    store.write_config(VXLAN)
    lease = store.acquire('192.0.2.2', 'vxlan', {'VtepMAC': '56:83:9e:b8:2d:a3'}, random.Random(1))
    key = store.lease_key(lease.subnet)
    assert key == '%s/subnets/%s-24' % (store.prefix, lease.subnet.network_address)
    assert oracle.get(key) == ('{"PublicIP":"192.0.2.2","BackendType":"vxlan",'
                               '"BackendData":{"VtepMAC":"56:83:9e:b8:2d:a3"}}')
    assert LEASE_TTL - 60 <= oracle.ttl(key) <= LEASE_TTL
    assert lease.ttl == LEASE_TTL and lease.vtep_mac == '56:83:9e:b8:2d:a3'
    assert store.config().compatible(lease.subnet)
    leases = store.leases()
    assert list(leases) == [lease.subnet] and leases.warnings == []
    assert leases[lease.subnet].public_ip == '192.0.2.2'
    assert leases.revision >= oracle.index(key)
    assert store.subnet_of(key) == lease.subnet and store.subnet_of(store.config_key) is None


def test_acquire_needs_a_config_of_the_same_backend(store):
    with pytest.raises(FlannelConfigError, match='no network config'):
        store.acquire('192.0.2.2', 'vxlan', mac(1), random.Random(1))
    store.write_config(TINY)
    with pytest.raises(FlannelConfigError, match='host-gw'):
        store.acquire('192.0.2.2', 'vxlan', mac(1), random.Random(1))
    with pytest.raises(UnsupportedBackend):
        store.acquire('192.0.2.2', 'udp', None, random.Random(1))


def test_concurrent_hosts_never_collide(stores, oracle):
    first = stores()
    first.write_config(SMALL)
    hosts = [stores() for dummy in range(7)]
    barrier = threading.Barrier(len(hosts))
    results = {}
    errors = []

    def run(n, store):
        try:
            barrier.wait()
            # the same seed everywhere: every host first wants the same subnet
            results[n] = store.acquire('192.0.2.%d' % (n + 1), 'vxlan', mac(n), random.Random(0))
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, store)) for n, store in enumerate(hosts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    subnets = [lease.subnet for lease in results.values()]
    assert len(set(subnets)) == 7
    stored = oracle.keys_below(first.subnets_key)
    assert len(stored) == 7
    owners = dict((parse_subnet_key(key.rsplit('/', 1)[1]), value) for key, value in stored.items())
    for n, lease in results.items():
        assert owners[lease.subnet] == lease.value
        assert '"PublicIP":"192.0.2.%d"' % (n + 1) in lease.value
    # the range is full now
    with pytest.raises(NoFreeSubnet):
        first.acquire('192.0.2.99', 'vxlan', mac(99), random.Random(0))


def test_concurrent_hosts_in_a_big_network(stores):
    stores().write_config(VXLAN)
    hosts = [stores() for dummy in range(12)]
    barrier = threading.Barrier(len(hosts))
    results = {}

    def run(n, store):
        barrier.wait()
        results[n] = store.acquire('198.51.100.%d' % (n + 1), 'vxlan', mac(n), random.Random(5))

    threads = [threading.Thread(target=run, args=(n, store)) for n, store in enumerate(hosts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 12
    assert len(set(lease.subnet for lease in results.values())) == 12


def test_restart_keeps_the_subnet(stores, oracle):
    before = stores()
    before.write_config(VXLAN)
    other = stores().acquire('192.0.2.50', 'vxlan', mac(50), random.Random(2))
    lease = before.acquire('192.0.2.2', 'vxlan', mac(1), random.Random(3))
    # a restart: new process, new rng, a new VTEP device with another MAC
    after = stores()
    again = after.acquire('192.0.2.2', 'vxlan', mac(2), random.Random(99))
    assert again.subnet == lease.subnet
    assert again.vtep_mac == mac(2)['VtepMAC']
    assert oracle.get(after.lease_key(lease.subnet)) == lease_value('192.0.2.2', 'vxlan', mac(2))
    assert oracle.ttl(after.lease_key(lease.subnet)) > LEASE_TTL - 60  # still a lease, not a reservation
    assert oracle.get(after.lease_key(other.subnet)) == other.value
    assert len(after.leases()) == 2
    assert after.renew(again).value == again.value


def test_release_gives_back_only_this_hosts_subnet(stores, oracle):
    store = stores()
    store.write_config(VXLAN)
    other = stores().acquire('192.0.2.50', 'vxlan', mac(50), random.Random(2))
    mine = store.acquire('192.0.2.2', 'vxlan', mac(1), random.Random(3))
    assert store.release('192.0.2.2') == [mine.subnet]
    assert oracle.get(store.lease_key(mine.subnet)) is None
    assert oracle.get(store.lease_key(other.subnet)) == other.value
    assert store.release('192.0.2.2') == []


def test_deleted_lease_is_lost_and_a_new_one_is_taken(stores, oracle):
    store = stores()
    store.write_config(VXLAN)
    lease = store.acquire('192.0.2.2', 'vxlan', mac(1), random.Random(4))
    stores().client.delete(store.lease_key(lease.subnet))
    with pytest.raises(LeaseLost, match='gone'):
        store.renew(lease)
    assert oracle.get(store.lease_key(lease.subnet)) is None  # renew never takes it back
    fresh = store.acquire('192.0.2.2', 'vxlan', mac(1), random.Random(5))
    assert oracle.get(store.lease_key(fresh.subnet)) == fresh.value
    assert store.renew(fresh).subnet == fresh.subnet


def test_renew_of_a_lease_taken_by_another_host(stores):
    store = stores()
    store.write_config(VXLAN)
    lease = store.acquire('192.0.2.2', 'vxlan', mac(1), random.Random(4))
    thief = stores()
    thief.client.set(thief.lease_key(lease.subnet), lease_value('192.0.2.3', 'vxlan', mac(3)))
    with pytest.raises(LeaseLost, match='192.0.2.3'):
        store.renew(lease)
    thief.client.set(thief.lease_key(lease.subnet), 'garbage')
    with pytest.raises(LeaseLost, match='garbage'):
        store.renew(lease)


def test_renew_gives_a_fresh_ttl_without_changing_the_value(store, oracle):
    store.write_config(VXLAN)
    lease = store.acquire('192.0.2.2', 'vxlan', mac(1), random.Random(4), ttl=100)
    key = store.lease_key(lease.subnet)
    assert oracle.ttl(key) <= 100
    renewed = store.renew(lease)
    assert renewed.ttl == LEASE_TTL
    assert oracle.ttl(key) > 1000
    assert oracle.get(key) == lease.value
    assert store.renew(renewed, ttl=500).ttl == 500
    assert oracle.ttl(key) <= 500


def test_previous_subnet_is_tried_first(store):
    store.write_config(VXLAN)
    lease = store.acquire('192.0.2.2', 'vxlan', mac(1), random.Random(4))
    store.client.delete(store.lease_key(lease.subnet))
    again = store.acquire('192.0.2.2', 'vxlan', mac(1), random.Random(77), previous=lease.subnet)
    assert again.subnet == lease.subnet


def test_own_lease_that_no_longer_fits_is_replaced(store, oracle):
    store.write_config(VXLAN)
    # the first subnet of the network is never handed out (below SubnetMin)
    stale = '%s/subnets/10.1.0.0-24' % store.prefix
    oracle.put(stale, lease_value('192.0.2.2', 'vxlan', mac(1)))
    lease = store.acquire('192.0.2.2', 'vxlan', mac(1), random.Random(4))
    assert str(lease.subnet) != '10.1.0.0/24'
    assert oracle.get(stale) is None


def test_reservation_stays_without_ttl(store, oracle):
    store.write_config(VXLAN)
    key = '%s/subnets/10.1.42.0-24' % store.prefix
    oracle.put(key, lease_value('192.0.2.2', 'vxlan', mac(1)))
    lease = store.acquire('192.0.2.2', 'vxlan', mac(2), random.Random(4))
    assert str(lease.subnet) == '10.1.42.0/24' and lease.ttl is None
    assert oracle.get(key) == lease_value('192.0.2.2', 'vxlan', mac(2))
    assert oracle.ttl(key) is None
    assert store.renew(lease).ttl is None
    assert oracle.ttl(key) is None


def test_garbage_leases_are_skipped_with_a_warning(store, oracle):
    store.write_config(TINY)
    base = store.subnets_key
    oracle.put(base + '/10.8.0.16-28', 'garbage')
    oracle.put(base + '/10.8.0.32-28', '{"PublicIP":"999.1.1.1","BackendType":"host-gw"}')
    oracle.put(base + '/not-a-subnet', '{"PublicIP":"192.0.2.7","BackendType":"host-gw"}')
    oracle.put(base + '/10.9.0.0-24', '{"PublicIP":"192.0.2.8","BackendType":"host-gw"}')
    oracle.put(base + '/10.8.0.0-28', '{"PublicIP":"192.0.2.9","BackendType":"host-gw"}')
    config = store.config()
    leases = store.leases(config)
    assert sorted(str(s) for s in leases) == ['10.8.0.0/28']
    text = '\n'.join(leases.warnings)
    assert len(leases.warnings) == 4
    for name in ('10.8.0.16-28', "'garbage'", '10.8.0.32-28', "'999.1.1.1'", 'not-a-subnet', '10.9.0.0-24'):
        assert name in text
    # without a config the foreign-network lease counts, the garbage does not
    assert sorted(str(s) for s in store.leases()) == ['10.8.0.0/28', '10.9.0.0/24']
    # the keys holding garbage stay taken: the one free subnet is the one handed out
    lease = store.acquire('192.0.2.2', 'host-gw', None, random.Random(0))
    assert str(lease.subnet) == '10.8.0.48/28'
    assert oracle.get(base + '/10.8.0.48-28') == '{"PublicIP":"192.0.2.2","BackendType":"host-gw"}'
    assert oracle.get(base + '/10.8.0.16-28') == 'garbage'
    with pytest.raises(NoFreeSubnet):
        store.acquire('192.0.2.3', 'host-gw', None, random.Random(0))
