# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""flannel's formats: network config, subnet keys, lease values, subnet.env (golden values as
real flanneld writes and reads them)."""

from __future__ import annotations

import ipaddress
import random

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.flannel_network import (
    DEFAULT_PREFIX,
    DEFAULT_VNI,
    DEFAULT_VXLAN_PORT,
    FlannelConfigError,
    FlannelDataError,
    Lease,
    LeaseFormatError,
    NoFreeSubnet,
    UnsupportedBackend,
    choose_subnet,
    config_key,
    free_subnets,
    lease_key,
    lease_value,
    mtu,
    normalize_prefix,
    overlapping,
    parse_config,
    parse_lease,
    parse_mac,
    parse_subnet_key,
    subnet_env,
    subnet_key,
    subnets_dir,
)

# Golden values, byte for byte as real flanneld writes them.
GOLDEN_KEY = '/coreos.com/network/subnets/10.1.100.0-24'
GOLDEN_VXLAN = '{"PublicIP":"192.0.2.2","BackendType":"vxlan","BackendData":{"VtepMAC":"56:83:9e:b8:2d:a3"}}'
GOLDEN_UDP = '{"PublicIP":"192.0.2.2"}'
GOLDEN_ENV = ('FLANNEL_NETWORK=10.1.0.0/16\n'
              'FLANNEL_SUBNET=10.1.100.1/24\n'
              'FLANNEL_MTU=1350\n'
              'FLANNEL_IPMASQ=false\n')
SEED_CONFIG = '{ "Network": "10.1.0.0/16" }'
VXLAN_CONFIG = '{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}}'

net = ipaddress.IPv4Network
addr = ipaddress.IPv4Address


def vxlan(network='10.1.0.0/16', **extra):
    fields = ['"Network": "%s"' % network] + ['"%s": %s' % item for item in extra.items()]
    fields.append('"Backend": {"Type": "vxlan"}')
    return parse_config('{%s}' % ', '.join(fields))


# ---------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------

def test_key_layout_default_prefix():
    assert DEFAULT_PREFIX == '/coreos.com/network'
    assert config_key() == '/coreos.com/network/config'
    assert subnets_dir() == '/coreos.com/network/subnets'
    assert lease_key(DEFAULT_PREFIX, net('10.1.100.0/24')) == GOLDEN_KEY
    assert lease_key('/it/x/coreos.com/network/', '10.1.100.0/24') == '/it/x/coreos.com/network/subnets/10.1.100.0-24'


@pytest.mark.parametrize('prefix', ['', '/', 'coreos.com/network', '//x', '/a//b', '/a/../b', '/a b', '/a\n',
                                    '/ä', None, 5, '/a/./b'])
def test_hostile_prefixes_are_refused(prefix):
    with pytest.raises(FlannelDataError) as info:
        normalize_prefix(prefix)
    assert repr(prefix)[:20] in str(info.value)


@pytest.mark.parametrize('subnet, key', [
    ('10.1.100.0/24', '10.1.100.0-24'),
    ('10.1.15.0/24', '10.1.15.0-24'),
    ('10.1.0.64/26', '10.1.0.64-26'),
    ('192.168.7.252/30', '192.168.7.252-30'),
    ('0.0.0.0/0', '0.0.0.0-0'),
    ('255.255.255.255/32', '255.255.255.255-32'),
])
def test_subnet_key_both_ways(subnet, key):
    assert subnet_key(net(subnet)) == key
    assert subnet_key(subnet) == key
    assert parse_subnet_key(key) == net(subnet)


@pytest.mark.parametrize('key', [
    '10.1.15.0/24', '10.1.15.1-24', '010.1.15.0-24', '10.01.15.0-24', '10.1.15.0-024', '10.1.15.0-33',
    '10.1.15.0-', '-24', '10.1.15-24', '10.1.15.0.0-24', '10.1.256.0-24', ' 10.1.15.0-24', '10.1.15.0-24 ',
    '10.1.15.0-24\n', '10.1.15.0-24x', 'x10.1.15.0-24', '10.1.15.0_24', '10.1.15.0--24', '::-128',
    'fe80::-64', '\uff11\uff10.1.15.0-24', '10.1.15.0-2\u0664', '', 'config', '10.1.15.0-+4', None, 24,
])
def test_subnet_keys_are_parsed_strictly(key):
    with pytest.raises(LeaseFormatError) as info:
        parse_subnet_key(key)
    assert repr(key) in str(info.value)


@pytest.mark.parametrize('subnet', ['10.1.15.1/24', '10.1.15.0', '::/0', 'x', 24, None, ipaddress.IPv6Network('::/64')])
def test_subnet_key_refuses_non_networks(subnet):
    with pytest.raises(LeaseFormatError):
        subnet_key(subnet)


# ---------------------------------------------------------------------------
# network config
# ---------------------------------------------------------------------------

def test_seed_config_means_udp_and_is_refused_saying_so():
    with pytest.raises(UnsupportedBackend) as info:
        parse_config(SEED_CONFIG)
    assert info.value.backend_type == 'udp'
    assert info.value.defaulted is True
    assert 'udp' in str(info.value) and 'no Backend' in str(info.value)
    assert isinstance(info.value, ValueError)


def test_vxlan_defaults():
    config = parse_config(VXLAN_CONFIG)
    assert config.network == net('10.1.0.0/16')
    assert config.subnet_len == 24
    assert config.subnet_min == addr('10.1.1.0')
    assert config.subnet_max == addr('10.1.255.0')
    assert config.backend_type == 'vxlan'
    assert (config.vni, config.port) == (DEFAULT_VNI, DEFAULT_VXLAN_PORT) == (1, 8472)
    assert config.gbp is False and config.direct_routing is False
    assert config.device == 'flannel.1'
    assert config.subnet_count == 255
    assert config.text == VXLAN_CONFIG


def test_host_gw_and_vxlan_options():
    config = parse_config('{"Network": "10.5.0.0/16", "Backend": {"Type": "host-gw"}}')
    assert config.backend_type == 'host-gw'
    assert config.vni is None and config.port is None and config.device is None
    config = parse_config('{"Network": "10.5.0.0/16", "Backend": {"Type": "vxlan", "VNI": 42, "Port": 4789, '
                          '"GBP": true, "DirectRouting": true, "Future": {"x": 1}}}')
    assert (config.vni, config.port, config.gbp, config.direct_routing) == (42, 4789, True, True)
    assert config.device == 'flannel.42'
    # Port 0 leaves the kernel's default, 8472
    assert parse_config('{"Network": "10.5.0.0/16", "Backend": {"Type": "vxlan", "Port": 0}}').port == 8472


@pytest.mark.parametrize('network, subnet_len, low, high', [
    ('10.1.0.0/16', 24, '10.1.1.0', '10.1.255.0'),
    ('10.0.0.0/8', 24, '10.0.1.0', '10.255.255.0'),
    ('10.4.0.0/22', 24, '10.4.1.0', '10.4.3.0'),
    ('10.4.0.0/23', 25, '10.4.0.128', '10.4.1.128'),
    ('10.4.0.0/26', 28, '10.4.0.16', '10.4.0.48'),
    ('10.4.0.0/28', 30, '10.4.0.4', '10.4.0.12'),
])
def test_subnet_len_defaults_follow_flannel(network, subnet_len, low, high):
    config = vxlan(network)
    assert (config.subnet_len, str(config.subnet_min), str(config.subnet_max)) == (subnet_len, low, high)


def test_explicit_subnet_fields():
    config = vxlan(SubnetLen=26, SubnetMin='"10.1.0.64"', SubnetMax='"10.1.3.192"')
    assert (config.subnet_len, str(config.subnet_min), str(config.subnet_max)) == (26, '10.1.0.64', '10.1.3.192')
    assert config.subnet_count == 15
    # Go's zero values mean "default", as in flanneld
    config = vxlan(SubnetLen=0, SubnetMin='"0.0.0.0"')
    assert (config.subnet_len, str(config.subnet_min)) == (24, '10.1.1.0')
    # host bits of Network are dropped, as Go's ParseCIDR does
    assert vxlan('10.1.2.3/16').network == net('10.1.0.0/16')


def test_field_names_match_as_go_does():
    config = parse_config('{"network": "10.2.0.0/16", "SUBNETLEN": 25, "backend": {"type": "vxlan", "vni": 7}}')
    assert (config.network, config.subnet_len, config.vni) == (net('10.2.0.0/16'), 25, 7)
    with pytest.raises(FlannelConfigError, match='Network twice'):
        parse_config('{"Network": "10.2.0.0/16", "network": "10.3.0.0/16", "Backend": {"Type": "vxlan"}}')
    with pytest.raises(FlannelConfigError, match='twice'):
        parse_config('{"Network": "10.2.0.0/16", "Network": "10.3.0.0/16", "Backend": {"Type": "vxlan"}}')


def test_bytes_config_is_read():
    assert parse_config(VXLAN_CONFIG.encode()).text == VXLAN_CONFIG


BACKEND = '"Backend": {"Type": "vxlan"}'


@pytest.mark.parametrize('text, named', [
    ('', "''"),
    ('not json', 'not json'),
    ('{"Network": "10.1.0.0/16"', '10.1.0.0/16'),
    ('[]', '[]'),
    ('"10.1.0.0/16"', '10.1.0.0/16'),
    ('null', 'null'),
    ('NaN', 'NaN'),
    ('{%s}' % BACKEND, 'no Network'),
    ('{"Network": null, %s}' % BACKEND, 'None'),
    ('{"Network": 167837696, %s}' % BACKEND, '167837696'),
    ('{"Network": ["10.1.0.0/16"], %s}' % BACKEND, "['10.1.0.0/16']"),
    ('{"Network": "10.1.0.0", %s}' % BACKEND, "'10.1.0.0'"),
    ('{"Network": "10.1.0.0/33", %s}' % BACKEND, "'10.1.0.0/33'"),
    ('{"Network": "10.1.0.0/-1", %s}' % BACKEND, "'10.1.0.0/-1'"),
    ('{"Network": "10.1.0.0/016", %s}' % BACKEND, "'10.1.0.0/016'"),
    ('{"Network": "10.256.0.0/16", %s}' % BACKEND, "'10.256.0.0/16'"),
    ('{"Network": "010.1.0.0/16", %s}' % BACKEND, "'010.1.0.0/16'"),
    ('{"Network": " 10.1.0.0/16", %s}' % BACKEND, "' 10.1.0.0/16'"),
    ('{"Network": "10.1.0.0/16\\n", %s}' % BACKEND, "'10.1.0.0/16\\n'"),
    ('{"Network": "fd00::/64", %s}' % BACKEND, "'fd00::/64'"),
    ('{"Network": "10.1.0.0/29", %s}' % BACKEND, '10.1.0.0/29'),
    ('{"Network": "10.1.0.0/16", "SubnetLen": "24", %s}' % BACKEND, "'24'"),
    ('{"Network": "10.1.0.0/16", "SubnetLen": 24.0, %s}' % BACKEND, '24.0'),
    ('{"Network": "10.1.0.0/16", "SubnetLen": true, %s}' % BACKEND, 'True'),
    ('{"Network": "10.1.0.0/16", "SubnetLen": -1, %s}' % BACKEND, '-1'),
    ('{"Network": "10.1.0.0/16", "SubnetLen": 31, %s}' % BACKEND, '31'),
    ('{"Network": "10.1.0.0/16", "SubnetLen": 17, %s}' % BACKEND, 'SubnetLen 17'),
    ('{"Network": "10.1.0.0/16", "SubnetLen": 4294967320, %s}' % BACKEND, '4294967320'),
    ('{"Network": "10.1.0.0/16", "SubnetLen": %s, %s}' % ('9' * 400, BACKEND), '999999'),
    ('{"Network": "10.1.0.0/16", "SubnetLen": 1e400, %s}' % BACKEND, 'inf'),
    ('{"Network": "10.1.0.0/16", "SubnetLen": Infinity, %s}' % BACKEND, 'Infinity'),
    ('{"Network": "10.1.0.0/16", "SubnetMin": "10.2.1.0", %s}' % BACKEND, "'10.2.1.0'"),
    ('{"Network": "10.1.0.0/16", "SubnetMin": "10.1.1.1", %s}' % BACKEND, "'10.1.1.1'"),
    ('{"Network": "10.1.0.0/16", "SubnetMax": "11.0.0.0", %s}' % BACKEND, "'11.0.0.0'"),
    ('{"Network": "10.1.0.0/16", "SubnetMax": "10.1.1.128", %s}' % BACKEND, "'10.1.1.128'"),
    ('{"Network": "10.1.0.0/16", "SubnetMin": 10, %s}' % BACKEND, '10'),
    ('{"Network": "10.1.0.0/16", "SubnetMin": null, %s}' % BACKEND, 'None'),
    ('{"Network": "10.1.0.0/16", "SubnetMin": "10.1.9.0", "SubnetMax": "10.1.8.0", %s}' % BACKEND, '10.1.9.0'),
    ('{"Network": "10.1.0.0/16", "Backend": "vxlan"}', "'vxlan'"),
    ('{"Network": "10.1.0.0/16", "Backend": null}', 'Backend must be a JSON object, got None'),
    ('{"Network": "10.1.0.0/16", "Backend": {}}', 'None'),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": 1}}', '1'),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": "udp"}}', "'udp'"),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": "VXLAN"}}', "'VXLAN'"),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": "aws-vpc"}}', "'aws-vpc'"),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": ""}}', "''"),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan", "VNI": -1}}', '-1'),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan", "VNI": 16777216}}', '16777216'),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan", "VNI": "1"}}', "'1'"),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan", "Port": 65536}}', '65536'),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan", "Port": 8472.5}}', '8472.5'),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan", "GBP": 1}}', '1'),
    ('{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan", "Type": "host-gw"}}', 'twice'),
    ('[' * 60000, '[[['),
    ('{"a":' * 10000 + '1' + '}' * 10000, 'recursion'),
    ('{"Network": "10.1.0.0/16", "x": ' + '[' * 20000 + ']' * 20000 + ', %s}' % BACKEND, '[[['),
    ('{"Network": "%s"}' % ('x' * 70000), 'too large'),
])
def test_hostile_configs_are_refused_naming_the_value(text, named):
    with pytest.raises(FlannelConfigError) as info:
        parse_config(text)
    assert named in str(info.value)
    assert len(str(info.value)) < 600


@pytest.mark.parametrize('value', [b'\xff\xfe', None, 42, {'Network': '10.1.0.0/16'}])
def test_config_that_is_not_text_is_refused(value):
    with pytest.raises(FlannelConfigError):
        parse_config(value)


def test_unsupported_backend_names_the_value():
    with pytest.raises(UnsupportedBackend) as info:
        parse_config('{"Network": "10.1.0.0/16", "Backend": {"Type": "ipip"}}')
    assert info.value.backend_type == 'ipip' and info.value.defaulted is False
    assert "'ipip'" in str(info.value)


# ---------------------------------------------------------------------------
# leases
# ---------------------------------------------------------------------------

def test_lease_values_are_byte_exact():
    assert lease_value('192.0.2.2', 'vxlan', {'VtepMAC': '56:83:9e:b8:2d:a3'}) == GOLDEN_VXLAN
    assert lease_value(addr('192.0.2.2'), 'vxlan', {'VtepMAC': '56:83:9E:B8:2D:A3'}) == GOLDEN_VXLAN
    assert lease_value('192.0.2.2', 'host-gw') == '{"PublicIP":"192.0.2.2","BackendType":"host-gw"}'


def test_golden_leases_parse():
    lease = parse_lease('10.1.100.0-24', GOLDEN_VXLAN)
    assert lease == Lease(net('10.1.100.0/24'), '192.0.2.2', 'vxlan', '56:83:9e:b8:2d:a3', GOLDEN_VXLAN, None)
    assert lease.key_name == '10.1.100.0-24'
    assert lease_key(DEFAULT_PREFIX, lease.subnet) == GOLDEN_KEY
    udp = parse_lease(net('10.1.100.0/24'), GOLDEN_UDP)
    assert (udp.public_ip, udp.backend_type, udp.vtep_mac) == ('192.0.2.2', 'udp', None)
    host_gw = parse_lease('10.1.7.0/24', '{"PublicIP":"192.0.2.9","BackendType":"host-gw"}')
    assert (host_gw.backend_type, host_gw.vtep_mac) == ('host-gw', None)
    # what newer flanneld adds is ignored, as Go ignores unknown fields
    lease = parse_lease('10.1.100.0-24', '{"PublicIP":"192.0.2.2","PublicIPv6":null,"BackendType":"vxlan",'
                                         '"BackendData":{"VtepMAC":"56:83:9e:b8:2d:a3","Other":1}}')
    assert lease.vtep_mac == '56:83:9e:b8:2d:a3'


def test_lease_round_trip():
    for public_ip, kind, data in (('198.51.100.7', 'vxlan', {'VtepMAC': '02:00:00:aa:bb:cc'}),
                                  ('10.0.0.1', 'host-gw', None)):
        value = lease_value(public_ip, kind, data)
        lease = parse_lease('10.1.3.0-24', value)
        assert (lease.public_ip, lease.backend_type, lease.value) == (public_ip, kind, value)
        assert lease_value(lease.public_ip, lease.backend_type,
                           {'VtepMAC': lease.vtep_mac} if lease.vtep_mac else None) == value


@pytest.mark.parametrize('args, named', [
    (('192.0.2.2', 'udp', None), "'udp'"),
    (('192.0.2.2', 'ipip', None), "'ipip'"),
    (('192.0.2.256', 'host-gw', None), "'192.0.2.256'"),
    (('0.0.0.0', 'host-gw', None), "'0.0.0.0'"),
    (('224.0.0.1', 'host-gw', None), "'224.0.0.1'"),
    (('255.255.255.255', 'host-gw', None), "'255.255.255.255'"),
    (('2001:db8::1', 'host-gw', None), "'2001:db8::1'"),
    ((3221225986, 'host-gw', None), '3221225986'),
    (('192.0.2.2', 'vxlan', None), 'None'),
    (('192.0.2.2', 'vxlan', {'VtepMAC': '01:00:5e:00:00:01'}), "'01:00:5e:00:00:01'"),
    (('192.0.2.2', 'vxlan', {'VtepMAC': 'ff:ff:ff:ff:ff:ff'}), "'ff:ff:ff:ff:ff:ff'"),
    (('192.0.2.2', 'vxlan', {'VtepMAC': '56-83-9e-b8-2d-a3'}), "'56-83-9e-b8-2d-a3'"),
    (('192.0.2.2', 'vxlan', {'VtepMAC': '56:83:9e:b8:2d:a3', 'X': 1}), "'X'"),
    (('192.0.2.2', 'host-gw', {'VtepMAC': '56:83:9e:b8:2d:a3'}), 'VtepMAC'),
])
def test_bad_lease_values_are_not_built(args, named):
    with pytest.raises(FlannelDataError) as info:
        lease_value(*args)
    assert named in str(info.value)


@pytest.mark.parametrize('value, named', [
    ('', "''"),
    ('garbage', 'garbage'),
    ('[1, 2]', '[1, 2]'),
    ('{}', 'no PublicIP'),
    ('{"PublicIP": 3221225986}', '3221225986'),
    ('{"PublicIP": null}', 'None'),
    ('{"PublicIP": "192.0.2"}', "'192.0.2'"),
    ('{"PublicIP": "192.0.2.2 "}', "'192.0.2.2 '"),
    ('{"PublicIP": "192.000.2.2"}', "'192.000.2.2'"),
    ('{"PublicIP": "2001:db8::1"}', "'2001:db8::1'"),
    ('{"PublicIP": "0.0.0.0"}', "'0.0.0.0'"),
    ('{"PublicIP": "239.1.1.1"}', "'239.1.1.1'"),
    ('{"PublicIP": "192.0.2.2", "BackendType": "ipip"}', "'ipip'"),
    ('{"PublicIP": "192.0.2.2", "BackendType": 7}', '7'),
    ('{"PublicIP": "192.0.2.2", "BackendType": "vxlan"}', 'None'),
    ('{"PublicIP": "192.0.2.2", "BackendType": "vxlan", "BackendData": "56:83:9e:b8:2d:a3"}', '56:83:9e:b8:2d:a3'),
    ('{"PublicIP": "192.0.2.2", "BackendType": "vxlan", "BackendData": {}}', 'no VtepMAC'),
    ('{"PublicIP": "192.0.2.2", "BackendType": "vxlan", "BackendData": {"VtepMAC": "03:83:9e:b8:2d:a3"}}',
     "'03:83:9e:b8:2d:a3'"),
    ('{"PublicIP": "192.0.2.2", "BackendType": "vxlan", "BackendData": {"VtepMAC": "00:00:00:00:00:00"}}',
     'zero'),
    ('{"PublicIP": "192.0.2.2", "BackendType": "vxlan", "BackendData": {"VtepMAC": "56:83:9e:b8:2d"}}',
     "'56:83:9e:b8:2d'"),
    ('{"PublicIP": "192.0.2.2", "BackendType": "vxlan", "BackendData": {"VtepMAC": [86]}}', '[86]'),
    ('{"PublicIP": "192.0.2.2", "publicip": "192.0.2.3"}', 'twice'),
    ('{"PublicIP": "1.2.3.4", "x": %s}' % ('1' * 100), 'too large'),
    ('[' * 50000, '[[['),
])
def test_garbage_leases_are_refused_naming_the_value(value, named):
    with pytest.raises(LeaseFormatError) as info:
        parse_lease('10.1.100.0-24', value)
    assert named in str(info.value)
    assert '10.1.100.0-24' in str(info.value)


def test_parse_lease_refuses_bad_subnets():
    for subnet in ('10.1.100.1-24', '10.1.100.0/33', 'x'):
        with pytest.raises(LeaseFormatError):
            parse_lease(subnet, GOLDEN_UDP)


def test_parse_mac():
    assert parse_mac('56:83:9E:B8:2D:A3') == '56:83:9e:b8:2d:a3'
    assert parse_mac('02:42:ac:11:00:02') == '02:42:ac:11:00:02'
    for bad in ('56:83:9e:b8:2d:a3:00', '5683.9eb8.2da3', '56:83:9e:b8:2d:g3', 'ff:ff:ff:ff:ff:ff', '', None):
        with pytest.raises(FlannelDataError):
            parse_mac(bad)


# ---------------------------------------------------------------------------
# choosing a subnet
# ---------------------------------------------------------------------------

def test_choose_subnet_is_random_and_repeatable_with_a_seed():
    config = parse_config(VXLAN_CONFIG)
    first = [choose_subnet(config, [], random.Random(7)) for dummy in range(3)]
    assert first[0] == first[1] == first[2]
    picks = set(choose_subnet(config, [], random.Random(seed)) for seed in range(50))
    assert len(picks) > 20
    # like flanneld: among the first 100 free subnets
    assert all(net('10.1.1.0/24') <= pick <= net('10.1.100.0/24') for pick in picks)


def test_choose_subnet_never_returns_taken_or_out_of_range():
    config = vxlan('10.9.0.0/20', SubnetLen=26, SubnetMin='"10.9.1.0"', SubnetMax='"10.9.14.192"')
    allowed = set(net(('10.9.0.0', 26)).supernet(new_prefix=20).subnets(new_prefix=26))
    allowed = set(s for s in allowed if addr('10.9.1.0') <= s.network_address <= addr('10.9.14.192'))
    rng = random.Random(1234)
    for round_ in range(300):
        taken = rng.sample(sorted(allowed), rng.randrange(0, len(allowed)))
        # some bigger and foreign subnets too, overlapping several candidates
        if round_ % 3 == 0:
            taken.append(net('10.9.4.0/23'))
        if round_ % 5 == 0:
            taken.append(net('10.9.0.0/21'))
        taken.append(net('192.168.0.0/16'))
        try:
            pick = choose_subnet(config, taken, rng)
        except NoFreeSubnet:
            assert all(any(overlapping(s, t) for t in taken) for s in allowed)
            continue
        assert pick in allowed
        assert pick.prefixlen == 26
        assert not any(overlapping(pick, t) for t in taken)


def test_choose_subnet_fills_the_range_then_reports_it_full():
    config = vxlan('10.4.0.0/26')  # /28 subnets: 10.4.0.16 .. 10.4.0.48
    taken = []
    rng = random.Random(3)
    for dummy in range(3):
        taken.append(choose_subnet(config, taken, rng))
    assert sorted(taken) == [net('10.4.0.16/28'), net('10.4.0.32/28'), net('10.4.0.48/28')]
    with pytest.raises(NoFreeSubnet, match='10.4.0.16'):
        choose_subnet(config, taken, rng)
    # a lease of another length covering the range takes it all
    with pytest.raises(NoFreeSubnet):
        choose_subnet(config, ['10.4.0.0/26'], rng)


def test_free_subnets_skips_big_taken_ranges_quickly():
    config = vxlan('0.0.0.0/0', SubnetLen=30)
    free = free_subnets(config, [net('0.0.0.0/1'), net('128.0.0.0/2'), net('192.0.0.4/30')])
    assert free[0] == net('192.0.0.0/30') and free[1] == net('192.0.0.8/30')
    assert len(free) == 100


# ---------------------------------------------------------------------------
# on the host
# ---------------------------------------------------------------------------

def test_subnet_env_is_byte_exact():
    config = parse_config(VXLAN_CONFIG)
    assert subnet_env(config, net('10.1.100.0/24'), 1350, False) == GOLDEN_ENV
    assert subnet_env(config, '10.1.100.0/24', mtu('vxlan', 1400), False) == GOLDEN_ENV
    assert subnet_env(config, '10.1.7.0/24', 1450, True).splitlines()[1:] == [
        'FLANNEL_SUBNET=10.1.7.1/24', 'FLANNEL_MTU=1450', 'FLANNEL_IPMASQ=true']


@pytest.mark.parametrize('subnet, mtu_value, ipmasq', [
    ('10.2.0.0/24', 1350, False),
    ('10.1.0.0/15', 1350, False),
    ('10.1.100.0/31', 1350, False),
    ('10.1.100.1/24', 1350, False),
    ('10.1.100.0/24', 1350.0, False),
    ('10.1.100.0/24', True, False),
    ('10.1.100.0/24', 10, False),
    ('10.1.100.0/24', 1350, 'false'),
    ('10.1.100.0/24', 1350, 0),
])
def test_subnet_env_refuses_bad_input(subnet, mtu_value, ipmasq):
    with pytest.raises(FlannelDataError):
        subnet_env(parse_config(VXLAN_CONFIG), subnet, mtu_value, ipmasq)


def test_mtu():
    assert mtu('vxlan', 1500) == 1450
    assert mtu('vxlan', 1400) == 1350
    assert mtu('udp', 1500) == 1472
    assert mtu('host-gw', 1500) == 1500
    for backend, link in (('vxlan', 100), ('vxlan', True), ('vxlan', '1500'), ('vxlan', 70000),
                          ('vxlan', 1500.0), ('ipip', 1500), (None, 1500)):
        with pytest.raises(FlannelDataError) as info:
            mtu(backend, link)
        assert repr(link) in str(info.value) or repr(backend) in str(info.value) or str(link) in str(info.value)


def test_overlapping():
    assert overlapping('10.1.0.0/16', '10.1.5.0/24')
    assert overlapping(net('10.1.5.0/24'), net('10.1.0.0/16'))
    assert overlapping('10.1.5.0/24', '10.1.5.0/24')
    assert not overlapping('10.1.5.0/24', '10.1.6.0/24')
    assert not overlapping('10.1.5.0/25', '10.1.5.128/25')
    assert overlapping('0.0.0.0/0', '255.255.255.255/32')
    with pytest.raises(FlannelDataError):
        overlapping('10.1.5.1/24', '10.1.5.0/24')
