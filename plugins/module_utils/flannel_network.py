# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""flannel's data in etcd: the network config, subnet keys, leases, subnet.env.

Everything here is pure: no etcd, no network, no printing.  Reading and
writing the store is ``flannel_store``'s; the formats follow what real
flanneld (0.5.5 and 0.12) reads and writes, so both can share a network.

Key layout (default prefix ``/coreos.com/network``)
    ``<prefix>/config``                 the network config, JSON
    ``<prefix>/subnets/10.1.15.0-24``   one lease per host (``/`` written as ``-``)

Network config
    ``Network`` (required, IPv4 CIDR), ``SubnetLen`` (default 24, or the
    network's prefix length + 2 for networks smaller than a /22),
    ``SubnetMin``/``SubnetMax`` (default the second and the last subnet),
    ``Backend`` (``{"Type": ...}`` plus options).  Field names match as Go's
    ``encoding/json`` matches them (exact, else case-insensitively); unknown
    fields are ignored, as flanneld does.  **No Backend means udp** on real
    flannel; udp is not supported here, so such a config is refused with a
    message saying so.  Supported: ``vxlan`` (``VNI`` default 1, ``Port``
    default 8472, ``GBP``, ``DirectRouting``) and ``host-gw``.

Lease value (byte for byte as flanneld writes it)
    ``{"PublicIP":"192.0.2.2","BackendType":"vxlan","BackendData":{"VtepMAC":"56:83:9e:b8:2d:a3"}}``
    ``{"PublicIP":"192.0.2.2","BackendType":"host-gw"}``; flannel 0.5.5's udp
    leases carry only ``PublicIP``.

Every refusal is a :class:`FlannelDataError` (a ``ValueError``) whose message
names the offending value.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
from dataclasses import dataclass
from typing import NamedTuple, Optional

__all__ = [
    'DEFAULT_PREFIX', 'LEASE_TTL', 'RENEW_MARGIN', 'SUPPORTED_BACKENDS', 'LEASE_BACKENDS',
    'DEFAULT_VNI', 'DEFAULT_VXLAN_PORT', 'SUBNET_ENV_PATH',
    'FlannelError', 'FlannelDataError', 'FlannelConfigError', 'UnsupportedBackend',
    'LeaseFormatError', 'NoFreeSubnet',
    'NetworkConfig', 'Lease',
    'normalize_prefix', 'config_key', 'subnets_dir', 'lease_key',
    'parse_config', 'subnet_key', 'parse_subnet_key', 'parse_subnet',
    'lease_value', 'parse_lease', 'parse_public_ip', 'parse_mac',
    'choose_subnet', 'free_subnets', 'subnet_env', 'mtu', 'overlapping',
]

DEFAULT_PREFIX = '/coreos.com/network'
CONFIG_NAME = 'config'
SUBNETS_NAME = 'subnets'
SUBNET_ENV_PATH = '/run/flannel/subnet.env'

# A lease lives 24 h and is renewed about 1 h before it expires.
LEASE_TTL = 86400
RENEW_MARGIN = 3600

DEFAULT_VNI = 1
DEFAULT_VXLAN_PORT = 8472
MAX_VNI = (1 << 24) - 1

# Backends this collection runs, and backend types a lease may carry (peers' own).
SUPPORTED_BACKENDS = ('vxlan', 'host-gw')
LEASE_BACKENDS = ('udp', 'vxlan', 'host-gw')
# Bytes of encapsulation each backend takes from the public interface's MTU.
MTU_OVERHEAD = {'vxlan': 50, 'udp': 28, 'host-gw': 0}
MIN_MTU = 68
MAX_MTU = 65535

# Flannel picks a random subnet among the first this many free ones.
CANDIDATES = 100

# Values are small; anything bigger is not flannel's.
MAX_VALUE_SIZE = 65536
# Digits in a JSON integer before it counts as absurd (no Go int holds more).
_MAX_INT_DIGITS = 20

_OCTET = r'(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
_IPV4_RE = re.compile(r'%s(?:\.%s){3}' % (_OCTET, _OCTET))
_PREFIXLEN = r'(?:3[0-2]|[12][0-9]|[0-9])'
_CIDR_RE = re.compile(r'(%s(?:\.%s){3})/(%s)' % (_OCTET, _OCTET, _PREFIXLEN))
_SUBNET_KEY_RE = re.compile(r'(%s(?:\.%s){3})-(%s)' % (_OCTET, _OCTET, _PREFIXLEN))
_MAC_RE = re.compile(r'[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}')
_PREFIX_SEGMENT_RE = re.compile(r'[A-Za-z0-9_.-]+')


class FlannelError(Exception):
    """Base class of the flannel data layer's errors."""


class FlannelDataError(FlannelError, ValueError):
    """Bad data found in (or meant for) flannel's keys; the message names the value."""


class FlannelConfigError(FlannelDataError):
    """The network config is missing, malformed or invalid."""


class UnsupportedBackend(FlannelConfigError):
    """The backend type is valid for flannel but not run here (udp), or unknown.

    ``backend_type`` is the type; ``defaulted`` is true when the config has no
    ``Backend`` at all (which real flanneld runs as udp).
    """

    def __init__(self, message, backend_type, defaulted=False):
        super(UnsupportedBackend, self).__init__(message)
        self.backend_type = backend_type
        self.defaulted = defaulted


class LeaseFormatError(FlannelDataError):
    """A lease key or value is not in flannel's format."""


class NoFreeSubnet(FlannelError):
    """Every subnet between SubnetMin and SubnetMax is taken."""


def _show(value, limit=80):
    """A short printable form of ``value`` for messages."""
    text = repr(value)
    if len(text) > limit:
        text = text[:limit - 3] + '...'
    return text


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------

def normalize_prefix(prefix):
    """The key prefix without a trailing ``/``; refused unless ``/seg[/seg...]`` of plain segments."""
    if not isinstance(prefix, str):
        raise FlannelDataError('the flannel prefix must be a string, got %s' % _show(prefix))
    clean = prefix.rstrip('/') if len(prefix) > 1 else prefix
    segments = clean.split('/')
    if (not clean.startswith('/') or len(segments) < 2
            or any(not _PREFIX_SEGMENT_RE.fullmatch(seg) or seg in ('.', '..') for seg in segments[1:])):
        raise FlannelDataError('bad flannel prefix %s: expected /segment[/segment...] of letters, digits, '
                               '"_", "." and "-"' % _show(prefix))
    return clean


def config_key(prefix=DEFAULT_PREFIX):
    return '%s/%s' % (normalize_prefix(prefix), CONFIG_NAME)


def subnets_dir(prefix=DEFAULT_PREFIX):
    return '%s/%s' % (normalize_prefix(prefix), SUBNETS_NAME)


def lease_key(prefix, subnet):
    """``<prefix>/subnets/10.1.15.0-24``."""
    return '%s/%s' % (subnets_dir(prefix), subnet_key(subnet))


# --------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------

def _parse_ipv4(text, what, error=FlannelDataError):
    if not isinstance(text, str) or not _IPV4_RE.fullmatch(text):
        raise error('%s must be an IPv4 address (a.b.c.d), got %s' % (what, _show(text)))
    return ipaddress.IPv4Address(text)


def parse_subnet(value, what='subnet', error=FlannelDataError):
    """An ``IPv4Network`` from an ``IPv4Network`` or a canonical ``a.b.c.d/n`` string (no host bits)."""
    if isinstance(value, ipaddress.IPv4Network):
        return value
    match = _CIDR_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise error('%s must be an IPv4 network a.b.c.d/n, got %s' % (what, _show(value)))
    try:
        return ipaddress.IPv4Network(value)
    except ValueError:
        raise error('%s %s has host bits set (not a network address)' % (what, _show(value))) from None


def parse_public_ip(value, what='PublicIP', error=FlannelDataError):
    """A host's public address as text: strict dotted IPv4, not 0.0.0.0, multicast or broadcast."""
    if isinstance(value, ipaddress.IPv4Address):
        value = str(value)
    address = _parse_ipv4(value, what, error)
    if address.is_unspecified or address.is_multicast or address == ipaddress.IPv4Address('255.255.255.255'):
        raise error('%s must be a unicast IPv4 address, got %s' % (what, _show(value)))
    return str(address)


def parse_mac(value, what='VtepMAC', error=FlannelDataError):
    """A unicast Ethernet address ``xx:xx:xx:xx:xx:xx`` (any case), returned in lower case."""
    if not isinstance(value, str) or not _MAC_RE.fullmatch(value):
        raise error('%s must be a MAC address xx:xx:xx:xx:xx:xx, got %s' % (what, _show(value)))
    mac = value.lower()
    if int(mac[:2], 16) & 1:
        raise error('%s must be a unicast MAC address, got the multicast address %s' % (what, _show(value)))
    if mac == '00:00:00:00:00:00':
        raise error('%s must not be the zero MAC address' % what)
    return mac


def subnet_key(subnet):
    """The lease key's last segment of ``subnet``: ``10.1.15.0/24`` -> ``10.1.15.0-24``."""
    network = parse_subnet(subnet, 'lease subnet', LeaseFormatError)
    return '%s-%d' % (network.network_address, network.prefixlen)


def parse_subnet_key(text):
    """The ``IPv4Network`` named by a lease key's last segment (``10.1.15.0-24``).

    Strict: only the canonical form flannel writes (no leading zeros, no host
    bits, nothing around it).
    """
    match = _SUBNET_KEY_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise LeaseFormatError('bad subnet key %s: expected a.b.c.d-n' % _show(text))
    try:
        return ipaddress.IPv4Network('%s/%s' % (match.group(1), match.group(2)))
    except ValueError:
        raise LeaseFormatError('bad subnet key %s: host bits set (not a network address)' % _show(text)) from None


def overlapping(subnet, other):
    """Whether two IPv4 networks (``IPv4Network`` or ``a.b.c.d/n``) share any address."""
    first = parse_subnet(subnet)
    second = parse_subnet(other)
    return (int(first.network_address) <= int(second.broadcast_address)
            and int(second.network_address) <= int(first.broadcast_address))


# --------------------------------------------------------------------------
# JSON as Go's encoding/json reads it
# --------------------------------------------------------------------------

class _JsonRefused(ValueError):
    pass


def _pairs(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _JsonRefused('key %s appears twice' % _show(key))
        result[key] = value
    return result


def _int(text):
    if len(text.lstrip('-')) > _MAX_INT_DIGITS:
        raise _JsonRefused('number %s is too large' % _show(text))
    return int(text)


def _constant(text):
    raise _JsonRefused('%s is not JSON' % text)


def _load_json(value, what, error):
    if isinstance(value, bytes):
        try:
            value = value.decode('utf-8')
        except UnicodeDecodeError:
            raise error('%s is not UTF-8 text: %s' % (what, _show(value))) from None
    if not isinstance(value, str):
        raise error('%s must be JSON text, got %s' % (what, _show(value)))
    if len(value) > MAX_VALUE_SIZE:
        raise error('%s is too large (%d characters): %s' % (what, len(value), _show(value)))
    try:
        data = json.loads(value, object_pairs_hook=_pairs, parse_int=_int, parse_constant=_constant)
    except _JsonRefused as exc:
        raise error('%s is refused: %s in %s' % (what, exc, _show(value))) from None
    except (ValueError, RecursionError) as exc:
        raise error('%s is not valid JSON (%s): %s' % (what, exc, _show(value))) from None
    if not isinstance(data, dict):
        raise error('%s must be a JSON object, got %s' % (what, _show(value)))
    return data


def _fields(obj, names, what, error):
    """``{name: value}`` of the known ``names`` in ``obj``, matched as Go does (the exact name,
    else case-insensitively); other keys are ignored.  Two keys for one field are refused."""
    folded = dict((name.casefold(), name) for name in names)
    found = {}
    given = {}
    for key, value in obj.items():
        name = key if key in names else folded.get(key.casefold())
        if name is None:
            continue
        if name in found:
            raise error('%s has %s twice (%s and %s)' % (what, name, _show(given[name]), _show(key)))
        found[name] = value
        given[name] = key
    return found


def _json_int(value, what, low, high, error):
    if isinstance(value, bool) or not isinstance(value, int):
        raise error('%s must be an integer, got %s' % (what, _show(value)))
    if not low <= value <= high:
        raise error('%s must be between %d and %d, got %s' % (what, low, high, _show(value)))
    return value


def _json_bool(value, what, error):
    if not isinstance(value, bool):
        raise error('%s must be true or false, got %s' % (what, _show(value)))
    return value


# --------------------------------------------------------------------------
# Network config
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class NetworkConfig:
    """The network config with flannel's defaults applied.

    ``vni``/``port``/``gbp``/``direct_routing`` are the vxlan options
    (``None``/False for host-gw); ``text`` is the config as read;
    ``backend_defaulted``: the config names no Backend and runs the one the
    reader chose (real flanneld would run udp on it).
    """

    network: ipaddress.IPv4Network
    subnet_len: int
    subnet_min: ipaddress.IPv4Address
    subnet_max: ipaddress.IPv4Address
    backend_type: str
    vni: Optional[int] = None
    port: Optional[int] = None
    gbp: bool = False
    direct_routing: bool = False
    text: str = ''
    backend_defaulted: bool = False

    @property
    def subnet_size(self):
        return 1 << (32 - self.subnet_len)

    @property
    def subnet_count(self):
        """How many subnets lie between SubnetMin and SubnetMax."""
        return (int(self.subnet_max) - int(self.subnet_min)) // self.subnet_size + 1

    @property
    def device(self):
        """The vxlan device flannel makes (``flannel.<VNI>``), or None for host-gw."""
        return 'flannel.%d' % self.vni if self.backend_type == 'vxlan' else None

    def compatible(self, subnet):
        """Whether ``subnet`` is one this config hands out (flannel's ``isSubnetConfigCompat``):
        SubnetLen long, between SubnetMin and SubnetMax."""
        subnet = parse_subnet(subnet)
        return (subnet.prefixlen == self.subnet_len
                and int(self.subnet_min) <= int(subnet.network_address) <= int(self.subnet_max))


def _config_address(value, name, network, mask):
    if not isinstance(value, str):
        raise FlannelConfigError('%s must be an IPv4 address string, got %s' % (name, _show(value)))
    address = _parse_ipv4(value, name, FlannelConfigError)
    if int(address) == 0:
        return None  # Go's zero value: the default applies
    if address not in network:
        raise FlannelConfigError('%s %s is not in the Network %s' % (name, _show(value), network))
    if int(address) & mask != int(address):
        raise FlannelConfigError('%s %s is not on a SubnetLen boundary' % (name, _show(value)))
    return address


def _backend(fields):
    """``(type, options)`` of the config's Backend field."""
    if 'Backend' not in fields:
        raise UnsupportedBackend(
            'the network config has no Backend: real flanneld runs the udp backend for it, which is not '
            'supported here (supported: %s); set "Backend": {"Type": "vxlan"}' % ', '.join(SUPPORTED_BACKENDS),
            'udp', defaulted=True)
    value = fields['Backend']
    if not isinstance(value, dict):
        raise FlannelConfigError('Backend must be a JSON object, got %s' % _show(value))
    fields = _fields(value, ('Type', 'VNI', 'Port', 'GBP', 'DirectRouting'), 'Backend', FlannelConfigError)
    backend_type = fields.get('Type')
    if not isinstance(backend_type, str):
        raise FlannelConfigError('Backend.Type must be a string, got %s' % _show(backend_type))
    if backend_type not in SUPPORTED_BACKENDS:
        raise UnsupportedBackend('backend type %s is not supported (supported: %s)'
                                 % (_show(backend_type), ', '.join(SUPPORTED_BACKENDS)), backend_type)
    options = {}
    if backend_type == 'vxlan':
        options['vni'] = DEFAULT_VNI
        options['port'] = DEFAULT_VXLAN_PORT
        if 'VNI' in fields:
            options['vni'] = _json_int(fields['VNI'], 'Backend.VNI', 0, MAX_VNI, FlannelConfigError)
        if 'Port' in fields:
            # 0 leaves the port to the kernel, whose default is 8472
            options['port'] = _json_int(fields['Port'], 'Backend.Port', 0, 65535,
                                        FlannelConfigError) or DEFAULT_VXLAN_PORT
        if 'GBP' in fields:
            options['gbp'] = _json_bool(fields['GBP'], 'Backend.GBP', FlannelConfigError)
        if 'DirectRouting' in fields:
            options['direct_routing'] = _json_bool(fields['DirectRouting'], 'Backend.DirectRouting',
                                                   FlannelConfigError)
    return backend_type, options


def parse_config(text, default_backend=None):
    """The :class:`NetworkConfig` of the JSON ``text`` found at ``<prefix>/config``.

    A config without ``Backend`` runs ``default_backend`` when one is given
    (``backend_defaulted`` says so), else it is refused as the udp backend.

    Applies flannel's defaults and checks (``SubnetLen`` at most 30 and at
    least the network's prefix length + 2; a network smaller than /28 is
    refused; ``SubnetMin``/``SubnetMax`` inside the network and aligned).
    Raises :class:`FlannelConfigError`, or :class:`UnsupportedBackend` for a
    backend not run here (including the udp that a missing Backend means).
    """
    data = _load_json(text, 'the network config', FlannelConfigError)
    fields = _fields(data, ('Network', 'SubnetLen', 'SubnetMin', 'SubnetMax', 'Backend'),
                     'the network config', FlannelConfigError)
    if 'Network' not in fields:
        raise FlannelConfigError('the network config has no Network: %s' % _show(text))
    raw_network = fields['Network']
    match = _CIDR_RE.fullmatch(raw_network) if isinstance(raw_network, str) else None
    if match is None:
        raise FlannelConfigError('Network must be an IPv4 network a.b.c.d/n, got %s' % _show(raw_network))
    network = ipaddress.IPv4Network(raw_network, strict=False)

    subnet_len = 0
    if 'SubnetLen' in fields:
        subnet_len = _json_int(fields['SubnetLen'], 'SubnetLen', 0, 30, FlannelConfigError)
    if subnet_len:
        if subnet_len < network.prefixlen + 2:
            raise FlannelConfigError('SubnetLen %d is too short for the Network %s: it must be at least %d '
                                     '(room for four subnets)' % (subnet_len, network, network.prefixlen + 2))
    elif network.prefixlen > 28:
        raise FlannelConfigError('the Network %s is too small: the smallest useful network is a /28' % network)
    elif network.prefixlen <= 22:
        subnet_len = 24
    else:
        subnet_len = network.prefixlen + 2

    size = 1 << (32 - subnet_len)
    mask = (0xFFFFFFFF << (32 - subnet_len)) & 0xFFFFFFFF
    subnet_min = subnet_max = None
    if 'SubnetMin' in fields:
        subnet_min = _config_address(fields['SubnetMin'], 'SubnetMin', network, mask)
    if 'SubnetMax' in fields:
        subnet_max = _config_address(fields['SubnetMax'], 'SubnetMax', network, mask)
    if subnet_min is None:
        subnet_min = ipaddress.IPv4Address(int(network.network_address) + size)
    if subnet_max is None:
        subnet_max = ipaddress.IPv4Address(int(network.broadcast_address) + 1 - size)
    if subnet_min > subnet_max:
        raise FlannelConfigError('SubnetMin %s is above SubnetMax %s: no subnet to hand out'
                                 % (subnet_min, subnet_max))

    defaulted = 'Backend' not in fields and default_backend is not None
    backend_type, options = _backend({'Backend': {'Type': default_backend}} if defaulted else fields)
    if isinstance(text, bytes):
        text = text.decode('utf-8')
    return NetworkConfig(network=network, subnet_len=subnet_len, subnet_min=subnet_min,
                         subnet_max=subnet_max, backend_type=backend_type, text=text,
                         backend_defaulted=defaulted, **options)


# --------------------------------------------------------------------------
# Leases
# --------------------------------------------------------------------------

class Lease(NamedTuple):
    """One host's lease: ``subnet`` (``IPv4Network``), ``public_ip`` (text), ``backend_type``,
    ``vtep_mac`` (vxlan, else None), ``value`` (the JSON as stored) and ``ttl`` (seconds left
    when read or written; None for a key without TTL, or when not known)."""

    subnet: ipaddress.IPv4Network
    public_ip: str
    backend_type: str
    vtep_mac: Optional[str]
    value: str
    ttl: Optional[int] = None

    @property
    def key_name(self):
        return subnet_key(self.subnet)


def _backend_mac(backend_type, backend_data):
    """The VtepMAC of ``backend_data`` for vxlan; None for host-gw (which takes no data)."""
    if backend_type == 'vxlan':
        if not isinstance(backend_data, dict) or set(backend_data) != {'VtepMAC'}:
            raise LeaseFormatError('vxlan BackendData must be {"VtepMAC": "xx:xx:xx:xx:xx:xx"}, got %s'
                                   % _show(backend_data))
        return parse_mac(backend_data['VtepMAC'], 'VtepMAC', LeaseFormatError)
    if backend_data:
        raise LeaseFormatError('%s takes no BackendData, got %s' % (backend_type, _show(backend_data)))
    return None


def lease_value(public_ip, backend_type, backend_data=None):
    """The lease value flanneld writes, byte for byte.

    ``backend_data`` is ``{"VtepMAC": mac}`` for vxlan and None for host-gw.
    """
    public_ip = parse_public_ip(public_ip, 'PublicIP', LeaseFormatError)
    if backend_type not in SUPPORTED_BACKENDS:
        raise UnsupportedBackend('backend type %s is not supported (supported: %s)'
                                 % (_show(backend_type), ', '.join(SUPPORTED_BACKENDS)), backend_type)
    mac = _backend_mac(backend_type, backend_data)
    value = '{"PublicIP":"%s","BackendType":"%s"' % (public_ip, backend_type)
    if mac is not None:
        value += ',"BackendData":{"VtepMAC":"%s"}' % mac
    return value + '}'


def parse_lease(subnet, value):
    """The :class:`Lease` of ``subnet`` (``IPv4Network``, or a key segment ``10.1.15.0-24``)
    holding ``value``. Raises :class:`LeaseFormatError`.

    A lease without BackendType is a udp one (flannel 0.5.5); unknown
    BackendData fields and other fields are ignored, as flanneld does.
    """
    if isinstance(subnet, str) and '/' not in subnet:
        subnet = parse_subnet_key(subnet)
    subnet = parse_subnet(subnet, 'lease subnet', LeaseFormatError)
    what = 'lease %s' % subnet_key(subnet)
    data = _load_json(value, what, LeaseFormatError)
    fields = _fields(data, ('PublicIP', 'BackendType', 'BackendData'), what, LeaseFormatError)
    if 'PublicIP' not in fields:
        raise LeaseFormatError('%s has no PublicIP: %s' % (what, _show(value)))
    public_ip = parse_public_ip(fields['PublicIP'], '%s PublicIP' % what, LeaseFormatError)
    backend_type = fields.get('BackendType', '')
    if not isinstance(backend_type, str):
        raise LeaseFormatError('%s BackendType must be a string, got %s' % (what, _show(backend_type)))
    backend_type = backend_type or 'udp'
    if backend_type not in LEASE_BACKENDS:
        raise LeaseFormatError('%s has the unknown BackendType %s' % (what, _show(backend_type)))
    mac = None
    if backend_type == 'vxlan':
        data = fields.get('BackendData')
        if not isinstance(data, dict):
            raise LeaseFormatError('%s BackendData must be an object with VtepMAC, got %s'
                                   % (what, _show(data)))
        mac_field = _fields(data, ('VtepMAC',), '%s BackendData' % what, LeaseFormatError)
        if 'VtepMAC' not in mac_field:
            raise LeaseFormatError('%s has no VtepMAC: %s' % (what, _show(value)))
        mac = parse_mac(mac_field['VtepMAC'], '%s VtepMAC' % what, LeaseFormatError)
    if isinstance(value, bytes):
        value = value.decode('utf-8')
    return Lease(subnet=subnet, public_ip=public_ip, backend_type=backend_type, vtep_mac=mac, value=value)


# --------------------------------------------------------------------------
# Allocation
# --------------------------------------------------------------------------

def _intervals(taken):
    spans = []
    for subnet in taken:
        network = parse_subnet(subnet, 'taken subnet')
        spans.append((int(network.network_address), int(network.broadcast_address)))
    spans.sort()
    merged = []
    for low, high in spans:
        if merged and low <= merged[-1][1] + 1:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged


def free_subnets(config, taken, limit=CANDIDATES):
    """The first ``limit`` subnets between SubnetMin and SubnetMax overlapping none of ``taken``."""
    size = config.subnet_size
    candidate = int(config.subnet_min)
    last = int(config.subnet_max)
    spans = _intervals(taken)
    position = 0
    found = []
    while candidate <= last and len(found) < limit:
        while position < len(spans) and spans[position][1] < candidate:
            position += 1
        if position < len(spans) and spans[position][0] <= candidate + size - 1:
            # jump to the first aligned subnet after this taken span
            candidate = (spans[position][1] + size) // size * size
            continue
        found.append(ipaddress.IPv4Network((candidate, config.subnet_len)))
        candidate += size
    return found


def choose_subnet(config, taken, rng=None):
    """A free subnet between SubnetMin and SubnetMax, as flanneld picks it: at random among the
    first 100 subnets overlapping none of ``taken`` (``IPv4Network`` or ``a.b.c.d/n``).

    ``rng`` is a ``random.Random`` (seed it for a repeatable choice).
    Raises :class:`NoFreeSubnet`.
    """
    bag = free_subnets(config, taken)
    if not bag:
        raise NoFreeSubnet('no free subnet left in %s .. %s (/%d) of the Network %s'
                           % (config.subnet_min, config.subnet_max, config.subnet_len, config.network))
    rng = rng if rng is not None else random.SystemRandom()
    return bag[rng.randrange(len(bag))]


# --------------------------------------------------------------------------
# On the host
# --------------------------------------------------------------------------

def mtu(backend_type, link_mtu):
    """The overlay MTU flanneld uses: the public interface's MTU minus the backend's overhead
    (vxlan 50, udp 28, host-gw 0)."""
    if backend_type not in MTU_OVERHEAD:
        raise FlannelDataError('unknown backend type %s' % _show(backend_type))
    link_mtu = _json_int(link_mtu, 'the link MTU', MIN_MTU, MAX_MTU, FlannelDataError)
    result = link_mtu - MTU_OVERHEAD[backend_type]
    if result < MIN_MTU:
        raise FlannelDataError('the link MTU %d leaves %d for %s, below the minimum %d'
                               % (link_mtu, result, backend_type, MIN_MTU))
    return result


def subnet_env(config, subnet, mtu_value, ipmasq):
    """The text of ``/run/flannel/subnet.env`` as flanneld writes it.

    ``FLANNEL_SUBNET`` is the lease's first host address with the lease's
    prefix length (Docker's ``--bip``).
    """
    subnet = parse_subnet(subnet)
    if not subnet.subnet_of(config.network) or subnet.prefixlen > 30:
        raise FlannelDataError('subnet %s is not a lease of the Network %s' % (subnet, config.network))
    mtu_value = _json_int(mtu_value, 'FLANNEL_MTU', MIN_MTU, MAX_MTU, FlannelDataError)
    ipmasq = _json_bool(ipmasq, 'FLANNEL_IPMASQ', FlannelDataError)
    return ('FLANNEL_NETWORK=%s\nFLANNEL_SUBNET=%s/%d\nFLANNEL_MTU=%d\nFLANNEL_IPMASQ=%s\n'
            % (config.network, subnet.network_address + 1, subnet.prefixlen, mtu_value,
               'true' if ipmasq else 'false'))
