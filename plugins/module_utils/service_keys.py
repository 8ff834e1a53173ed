# -*- coding: utf-8 -*-
# Copyright: etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Service keys and values in etcd: the one format shared by the registrator,
the announcers, docker-discover and the ambassadors (and any module or lookup
that reads the services prefix).

Everything here is pure: no etcd, no Docker, no printing. Callers read and
write the store themselves and hand plain data to these functions.

Key layout
    ``<prefix>/<service name>/<id>``, default prefix ``/services``.
    The registrator writes ids of the form
    ``<hostname>:<container name>:<exposed port>[:udp]``; other writers
    (announcers) may use any id that is a single key segment.

Names (the one definition, applied wherever a name enters or leaves etcd)
    service name   ASCII letters, digits, ``_ . -``, starting with a letter
                   or digit, at most 128 characters (``kappa-test``,
                   ``redis-A``, ``busybox-443``);
    instance id    and any other key segment: the same plus ``:`` and ``@``,
                   at most 255 characters (``core-01:kappa-test-1:8000``,
                   ``apache@1``, ``echo.service``).
    Nothing else: no whitespace, control characters, ``/``, ``#``, ``?``,
    ``%``, quotes, backslashes or non-ASCII letters, no ``.``/``..``.

Values
    ``<ip>:<port>`` (IPv6 as ``[addr]:port``), as the registrator writes, or
    the JSON object ``{"host": ..., "port": ...}`` the ambassador announcers
    write. :func:`parse_value` reads both; :func:`encode_value` writes both.

How containers become services and how docker-discover exposes them lives
with the node daemons (agents/etcdfleet_agents/services/).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import NamedTuple

DEFAULT_PREFIX = '/services'

VALUE_STYLES = ('plain', 'json')

# Codes carried by ServiceDataError.code.
BAD_ADDRESS = 'bad_address'
BAD_PORT = 'bad_port'
BAD_JSON = 'bad_json'
WRONG_DEPTH = 'wrong_depth'
OUTSIDE_PREFIX = 'outside_prefix'
BAD_NAME = 'bad_name'

_SERVICE_ID_RE = re.compile(
    r'^(?P<hostname>.+):(?P<container>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<port>[0-9]{1,5})'
    r'(?::(?P<proto>udp|sctp))?$'
)
_HOST_LABEL_RE = re.compile(r'^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$')
# Characters no key segment may hold (the prefix is held to this only).
BAD_SEGMENT_CHARS = re.compile(r'[/\s\x00-\x1f\x7f]')
# What a service name and an instance id (any key segment) may hold; see the module docstring.
SERVICE_NAME_MAX = 128
SEGMENT_MAX = 255
_SERVICE_NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')
_SEGMENT_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.:@-]*')


class ServiceDataError(ValueError):
    """Bad data found in (or meant for) the services prefix.

    ``code`` is one of BAD_ADDRESS, BAD_PORT, BAD_JSON, WRONG_DEPTH,
    OUTSIDE_PREFIX, BAD_NAME; ``key`` and ``value`` are the offending entry
    when known.  ``str()`` gives a message naming the key, value and problem.
    """

    def __init__(self, code, reason, key=None, value=None):
        super(ServiceDataError, self).__init__(reason)
        self.code = code
        self.reason = reason
        self.key = key
        self.value = value

    def with_key(self, key):
        return ServiceDataError(self.code, self.reason, key=key, value=self.value)

    def __str__(self):
        parts = []
        if self.key is not None:
            parts.append('key %s' % describe(self.key))
        if self.value is not None:
            parts.append('value %s' % describe(self.value, 120))
        if parts:
            return '%s: %s' % (', '.join(parts), self.reason)
        return self.reason


def as_text(data):
    """Keys and values may arrive as bytes (etcd v3); return text or None."""
    if isinstance(data, (bytes, bytearray)):
        try:
            return bytes(data).decode('utf-8')
        except UnicodeDecodeError:
            return None
    return data


def describe(value, limit=160):
    """``repr`` of a name for a message: a newline shows as ``\\n``, a long name is cut to
    ``limit`` characters and its length given."""
    if isinstance(value, str) and len(value) > limit:
        return '%r... (%d characters)' % (value[:limit], len(value))
    return repr(value)


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------

class ServiceKey(NamedTuple):
    name: str
    id: str


class ServiceId(NamedTuple):
    hostname: str
    container: str
    port: int
    proto: str


def normalize_prefix(prefix=None):
    """Return the prefix as ``/a/b`` (leading slash, no trailing slash).

    ``None`` gives DEFAULT_PREFIX; ``'/'`` gives ``''`` (keys at the root).
    """
    if prefix is None:
        return DEFAULT_PREFIX
    if not isinstance(prefix, str):
        raise ValueError('services prefix must be a string, got %r' % (prefix,))
    segments = [s for s in prefix.split('/') if s]
    for segment in segments:
        if BAD_SEGMENT_CHARS.search(segment) or segment in ('.', '..'):
            raise ValueError('services prefix %r has an invalid segment %r' % (prefix, segment))
    return ''.join('/' + s for s in segments)


def _check_name(kind, text, pattern, limit, allowed):
    if not isinstance(text, str) or not text:
        raise ServiceDataError(BAD_NAME, '%s must be a non-empty string, got %s' % (kind, describe(text)))
    if len(text) > limit:
        raise ServiceDataError(BAD_NAME, '%s %s is longer than %d characters' % (kind, describe(text), limit))
    if not pattern.fullmatch(text):
        raise ServiceDataError(
            BAD_NAME, '%s %s may hold only ASCII letters, digits and %s, starting with a letter or digit'
            % (kind, describe(text), allowed))
    return text


def check_service_name(text, kind='service name'):
    """Return ``text`` if it is a valid service name, else raise ServiceDataError(BAD_NAME)."""
    return _check_name(kind, text, _SERVICE_NAME_RE, SERVICE_NAME_MAX, '"_.-"')


def check_segment(kind, text):
    """Return ``text`` if it is a valid instance id (or other key segment), else raise
    ServiceDataError(BAD_NAME) naming ``kind`` and the value."""
    return _check_name(kind, text, _SEGMENT_RE, SEGMENT_MAX, '"_.:@-"')


def service_dir(name, prefix=DEFAULT_PREFIX):
    """``<prefix>/<name>``: the directory holding one service's instances."""
    return '%s/%s' % (normalize_prefix(prefix), check_service_name(name))


def service_key(name, service_id, prefix=DEFAULT_PREFIX):
    """``<prefix>/<name>/<id>``."""
    return '%s/%s' % (service_dir(name, prefix), check_segment('service id', service_id))


def parse_key(key, prefix=DEFAULT_PREFIX):
    """Split ``<prefix>/<name>/<id>`` into a ServiceKey.

    Raises ServiceDataError with code OUTSIDE_PREFIX when the key is not under
    the prefix, WRONG_DEPTH when it is not exactly two levels below it,
    BAD_NAME when the service name or the id is not valid.
    """
    prefix = normalize_prefix(prefix)
    if not isinstance(key, str):
        raise ServiceDataError(OUTSIDE_PREFIX, 'key is not a string', key=key)
    if key == prefix or key == prefix + '/':
        raise ServiceDataError(WRONG_DEPTH, 'a value stored on the services prefix itself', key=key)
    if not key.startswith(prefix + '/'):
        raise ServiceDataError(OUTSIDE_PREFIX, 'key is not under %r' % (prefix or '/',), key=key)
    parts = key[len(prefix) + 1:].split('/')
    if len(parts) != 2 or not all(parts):
        raise ServiceDataError(
            WRONG_DEPTH, 'expected <prefix>/<service>/<id> under %r, found %d level(s)'
            % (prefix or '/', len([p for p in parts if p])), key=key)
    try:
        return ServiceKey(check_service_name(parts[0]), check_segment('service id', parts[1]))
    except ServiceDataError as exc:
        raise exc.with_key(key) from None


def service_id(hostname, container_name, port, proto='tcp'):
    """``<hostname>:<container name>:<port>`` plus ``:<proto>`` unless tcp."""
    port = check_port(port, 'exposed port')
    proto = (proto or 'tcp').lower()
    text = '%s:%s:%d' % (hostname, container_name.lstrip('/'), port)
    if proto != 'tcp':
        text += ':' + proto
    return text


def parse_service_id(text):
    """Parse a registrator-style id; return ServiceId or None if it is not one."""
    if not isinstance(text, str):
        return None
    match = _SERVICE_ID_RE.match(text)
    if not match:
        return None
    port = int(match.group('port'))
    if not 0 < port < 65536:
        return None
    return ServiceId(match.group('hostname'), match.group('container'), port,
                     match.group('proto') or 'tcp')


def owned_keys(keys, hostname, prefix=DEFAULT_PREFIX):
    """Keys (sorted) whose id says they were registered by ``hostname``.

    ``keys`` may be key strings or (key, value) pairs.  Keys with an id that
    is not registrator-style (for example a SERVICE_ID override or an
    announcer's key) are never reported: nothing here can prove they belong
    to this host.
    """
    found = set()
    for item in keys:
        key = as_text(item[0] if isinstance(item, (tuple, list)) else item)
        try:
            parsed = parse_key(key, prefix)
        except ServiceDataError:
            continue
        sid = parse_service_id(parsed.id)
        if sid is not None and sid.hostname == hostname:
            found.add(key)
    return sorted(found)


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

class Backend(NamedTuple):
    host: str
    port: int


class Instance(NamedTuple):
    """One entry of the services prefix: service name, id and address."""
    service: str
    id: str
    backend: Backend


def check_port(value, what='port'):
    """Return ``value`` as an int in 1..65535 or raise ServiceDataError(BAD_PORT)."""
    if isinstance(value, bool):
        raise ServiceDataError(BAD_PORT, '%s %r is not a number' % (what, value))
    if isinstance(value, int):
        port = value
    elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        port = int(value.strip())
    else:
        raise ServiceDataError(BAD_PORT, '%s %r is not a number' % (what, value))
    if not 0 < port < 65536:
        raise ServiceDataError(BAD_PORT, '%s %d is out of range 1-65535' % (what, port))
    return port


def check_host(host, allow_hostnames=False):
    """Return the host (an IP literal, or with ``allow_hostnames`` also a DNS
    name) or raise ServiceDataError(BAD_ADDRESS)."""
    if not isinstance(host, str) or not host.strip():
        raise ServiceDataError(BAD_ADDRESS, 'host %r is not an address' % (host,))
    host = host.strip()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if address.is_unspecified:
            raise ServiceDataError(BAD_ADDRESS, 'host %s is the unspecified address' % host)
        return address.compressed
    if not allow_hostnames:
        raise ServiceDataError(BAD_ADDRESS, 'host %r is not an IP address' % host)
    name = host[:-1] if host.endswith('.') else host
    labels = name.split('.')
    if (len(name) > 253 or not all(_HOST_LABEL_RE.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise ServiceDataError(BAD_ADDRESS, 'host %r is neither an IP address nor a host name' % host)
    return name


def format_address(host, port, allow_hostnames=False):
    """``host:port``, with IPv6 literals in brackets."""
    host = check_host(host, allow_hostnames)
    port = check_port(port)
    if ':' in host:
        return '[%s]:%d' % (host, port)
    return '%s:%d' % (host, port)


def encode_value(host, port, style='plain', allow_hostnames=False):
    """Encode an address the way it is stored in etcd.

    ``plain``: ``ip:port`` as the registrator writes it; ``json``:
    ``{"host": "<ip>", "port": <int>}`` as the ambassador announcers write it.
    """
    if style == 'plain':
        return format_address(host, port, allow_hostnames)
    if style == 'json':
        return json.dumps({'host': check_host(host, allow_hostnames), 'port': check_port(port)},
                          sort_keys=True)
    raise ValueError('value style must be one of %s, got %r' % (', '.join(VALUE_STYLES), style))


def parse_value(value, allow_hostnames=False):
    """Read a stored value (``ip:port`` or JSON ``{"host", "port"}``) into a Backend.

    Hosts must be IP literals unless ``allow_hostnames`` is true: a name that
    does not resolve would make the whole HAProxy configuration fail its
    check, so by default names count as bad data.

    Raises ServiceDataError (BAD_ADDRESS, BAD_PORT or BAD_JSON) carrying the
    value; the caller adds the key (``err.with_key(key)``) and skips it.
    """
    raw = value
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode('utf-8')
        except UnicodeDecodeError:
            raise ServiceDataError(BAD_ADDRESS, 'value is not UTF-8 text', value=raw) from None
    if not isinstance(value, str):
        raise ServiceDataError(BAD_ADDRESS, 'value is not text', value=raw)
    text = value.strip()
    try:
        if text.startswith('{'):
            return _parse_json_value(text, allow_hostnames)
        return _parse_plain_value(text, allow_hostnames)
    except ServiceDataError as exc:
        raise ServiceDataError(exc.code, exc.reason, value=value) from None


def _parse_json_value(text, allow_hostnames):
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ServiceDataError(BAD_JSON, 'value is not valid JSON (%s)' % exc) from None
    if not isinstance(data, dict):
        raise ServiceDataError(BAD_JSON, 'JSON value is not an object')
    missing = [field for field in ('host', 'port') if field not in data]
    if missing:
        raise ServiceDataError(BAD_JSON, 'JSON value lacks %s' % ' and '.join(repr(m) for m in missing))
    return Backend(check_host(data['host'], allow_hostnames), check_port(data['port']))


def _parse_plain_value(text, allow_hostnames):
    if not text:
        raise ServiceDataError(BAD_ADDRESS, 'value is empty, expected host:port')
    host, sep, port = text.rpartition(':')
    if not sep or not host:
        raise ServiceDataError(BAD_ADDRESS, 'value is not host:port')
    if host.startswith('['):
        if not host.endswith(']'):
            raise ServiceDataError(BAD_ADDRESS, 'unbalanced brackets around the host')
        inner = host[1:-1]
        try:
            address = ipaddress.IPv6Address(inner)
        except ValueError:
            raise ServiceDataError(BAD_ADDRESS, 'host %r in brackets is not an IPv6 address' % inner) from None
        host = address.compressed
        if address.is_unspecified:
            raise ServiceDataError(BAD_ADDRESS, 'host %s is the unspecified address' % host)
    elif ':' in host:
        raise ServiceDataError(BAD_ADDRESS, 'IPv6 host must be written in brackets: [addr]:port')
    else:
        host = check_host(host, allow_hostnames)
    return Backend(host, check_port(port))


def parse_entry(key, value, prefix=DEFAULT_PREFIX, allow_hostnames=False):
    """Parse one (key, value) pair of the services prefix into an Instance.

    Raises ServiceDataError (any code) naming the key and value.
    """
    try:
        parsed = parse_key(key, prefix)
        backend = parse_value(value, allow_hostnames)
    except ServiceDataError as exc:
        err = exc.with_key(key)
        if err.value is None and value is not None:
            err.value = value
        raise err from None
    return Instance(parsed.name, parsed.id, backend)


# ---------------------------------------------------------------------------
# Discover model

__all__ = [
    'DEFAULT_PREFIX', 'VALUE_STYLES', 'BAD_ADDRESS', 'BAD_PORT', 'BAD_JSON', 'WRONG_DEPTH',
    'OUTSIDE_PREFIX', 'BAD_NAME', 'BAD_SEGMENT_CHARS', 'SERVICE_NAME_MAX', 'SEGMENT_MAX',
    'ServiceDataError', 'ServiceKey', 'ServiceId', 'Backend', 'Instance', 'as_text', 'describe',
    'normalize_prefix', 'check_service_name', 'check_segment', 'service_dir', 'service_key',
    'parse_key', 'service_id', 'parse_service_id', 'owned_keys', 'check_port', 'check_host',
    'format_address', 'encode_value', 'parse_value', 'parse_entry',
]
