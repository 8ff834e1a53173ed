# -*- coding: utf-8 -*-
# Copyright: etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Service keys and values in etcd: the one format shared by registrator,
docker_discover and the ambassadors.

Everything here is pure: no etcd, no Docker, no printing. Callers read and
write etcd through the etcd client layer and Docker through the Docker SDK,
and hand plain data to these functions.

Key layout
    ``<prefix>/<service name>/<id>``, default prefix ``/services``.
    The registrator writes ids of the form
    ``<hostname>:<container name>:<exposed port>[:udp]``; other writers
    (announcers) may use any id that is a single key segment.

Values
    ``<ip>:<port>`` (IPv6 as ``[addr]:port``), as the registrator writes, or
    the JSON object ``{"host": ..., "port": ...}`` the ambassador announcers
    write. :func:`parse_value` reads both; :func:`encode_value` writes both.

Registrator model
    :func:`container_from_inspect` turns a Docker inspect document into a
    plain container description; :func:`container_services` turns such a
    description into :class:`Service` records; :func:`plan_sync` compares the
    wanted records with what etcd holds and says what to write and what to
    delete (including stale keys of this host).

Discover model
    :func:`build_catalog` turns a recursive read of the prefix into
    ``{service: [instances]}`` plus warnings for the entries it skipped;
    :func:`parse_exposures` and :func:`select_exposures` decide which services
    get a listening port.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import posixpath
import re
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Tuple

DEFAULT_PREFIX = '/services'

VALUE_STYLES = ('plain', 'json')

# Codes carried by ServiceDataError.code.
BAD_ADDRESS = 'bad_address'
BAD_PORT = 'bad_port'
BAD_JSON = 'bad_json'
WRONG_DEPTH = 'wrong_depth'
OUTSIDE_PREFIX = 'outside_prefix'
BAD_NAME = 'bad_name'

MODES = ('http', 'tcp')
DEFAULT_MODE = 'tcp'
DEFAULT_BALANCE = 'roundrobin'
BALANCE_ALGORITHMS = ('roundrobin', 'static-rr', 'leastconn', 'first', 'source', 'random')
PATTERN_TYPES = ('glob', 'regex')

_SERVICE_ID_RE = re.compile(
    r'^(?P<hostname>.+):(?P<container>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<port>[0-9]{1,5})'
    r'(?::(?P<proto>udp|sctp))?$'
)
_HOST_LABEL_RE = re.compile(r'^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$')
_BAD_SEGMENT_RE = re.compile(r'[/\s\x00-\x1f\x7f]')
_TRAILING_NUMBER_RE = re.compile(r'-([0-9]+)$')
_FALSE_WORDS = ('', '0', 'false', 'no', 'off')


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
            parts.append('key %r' % (self.key,))
        if self.value is not None:
            parts.append('value %r' % (_shorten(self.value),))
        if parts:
            return '%s: %s' % (', '.join(parts), self.reason)
        return self.reason


def _text(data):
    """Keys and values may arrive as bytes (etcd v3); return text or None."""
    if isinstance(data, (bytes, bytearray)):
        try:
            return bytes(data).decode('utf-8')
        except UnicodeDecodeError:
            return None
    return data


def _shorten(value, limit=120):
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        return text[:limit] + '...'
    return text


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
        if _BAD_SEGMENT_RE.search(segment) or segment in ('.', '..'):
            raise ValueError('services prefix %r has an invalid segment %r' % (prefix, segment))
    return ''.join('/' + s for s in segments)


def check_segment(kind, text):
    """Raise ServiceDataError(BAD_NAME) unless ``text`` can be one key segment."""
    if not isinstance(text, str) or not text:
        raise ServiceDataError(BAD_NAME, '%s must be a non-empty string, got %r' % (kind, text))
    if text in ('.', '..') or _BAD_SEGMENT_RE.search(text):
        raise ServiceDataError(
            BAD_NAME, '%s %r must not contain "/", whitespace or control characters' % (kind, text))
    return text


def service_dir(name, prefix=DEFAULT_PREFIX):
    """``<prefix>/<name>``: the directory holding one service's instances."""
    return '%s/%s' % (normalize_prefix(prefix), check_segment('service name', name))


def service_key(name, service_id, prefix=DEFAULT_PREFIX):
    """``<prefix>/<name>/<id>``."""
    return '%s/%s' % (service_dir(name, prefix), check_segment('service id', service_id))


def parse_key(key, prefix=DEFAULT_PREFIX):
    """Split ``<prefix>/<name>/<id>`` into a ServiceKey.

    Raises ServiceDataError with code OUTSIDE_PREFIX when the key is not under
    the prefix, WRONG_DEPTH when it is not exactly two levels below it.
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
    return ServiceKey(parts[0], parts[1])


def service_id(hostname, container_name, port, proto='tcp'):
    """``<hostname>:<container name>:<port>`` plus ``:<proto>`` unless tcp."""
    port = _check_port(port, 'exposed port')
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
        key = _text(item[0] if isinstance(item, (tuple, list)) else item)
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


def _check_port(value, what='port'):
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


def _check_host(host, allow_hostnames=False):
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
    host = _check_host(host, allow_hostnames)
    port = _check_port(port)
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
        return json.dumps({'host': _check_host(host, allow_hostnames), 'port': _check_port(port)},
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
    return Backend(_check_host(data['host'], allow_hostnames), _check_port(data['port']))


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
        host = _check_host(host, allow_hostnames)
    return Backend(host, _check_port(port))


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
# ---------------------------------------------------------------------------

class Catalog(NamedTuple):
    """What the services prefix holds.

    ``instances``: ``{service name: [Instance, ...]}``, names sorted, each list
    sorted by id; an address listed twice under one service is kept once
    (the smallest id).  ``warnings``: ServiceDataError for every skipped entry.
    """
    instances: Dict[str, List[Instance]]
    warnings: List[ServiceDataError]

    def names(self):
        return list(self.instances)

    def backends(self, name):
        """Backends of one service (empty list if unknown)."""
        return [inst.backend for inst in self.instances.get(name, ())]

    def as_dict(self):
        """``{service: [{"id", "host", "port"}, ...]}`` for templates and JSON."""
        return OrderedDict(
            (name, [{'id': i.id, 'host': i.backend.host, 'port': i.backend.port} for i in insts])
            for name, insts in self.instances.items())


def build_catalog(pairs, prefix=DEFAULT_PREFIX, allow_hostnames=False):
    """Build a Catalog from (key, value) pairs read recursively from ``prefix``.

    Directory nodes (value ``None``) and keys outside the prefix are ignored
    silently; every other entry that cannot be used becomes a warning.
    """
    prefix = normalize_prefix(prefix)
    found = {}
    warnings = []
    for key, value in pairs:
        if value is None:
            continue
        key = _text(key)
        if not isinstance(key, str) or not (key == prefix or key.startswith(prefix + '/')):
            continue
        try:
            instance = parse_entry(key, value, prefix, allow_hostnames)
        except ServiceDataError as exc:
            warnings.append(exc)
            continue
        found.setdefault(instance.service, []).append(instance)
    instances = OrderedDict()
    for name in sorted(found):
        seen = set()
        kept = []
        for inst in sorted(found[name], key=lambda i: (i.id, i.backend)):
            if inst.backend in seen:
                continue
            seen.add(inst.backend)
            kept.append(inst)
        instances[name] = kept
    warnings.sort(key=lambda w: (str(w.key), w.code))
    return Catalog(instances, warnings)


class Exposure(NamedTuple):
    """One service to publish on a local port."""
    name: str
    port: int
    mode: str = DEFAULT_MODE
    balance: str = DEFAULT_BALANCE
    source: str = 'explicit'


class ExposureRule(NamedTuple):
    """Expose every service whose name matches ``pattern``.

    The listening port is ``base_port + N``, where N is the number captured
    by the regex group named ``port`` or, without such a group (and for
    globs), the trailing ``-<digits>`` of the name (the suffix registrator
    gives to services of multi-port containers).
    """
    pattern: str
    pattern_type: str = 'glob'
    base_port: int = 0
    mode: str = DEFAULT_MODE
    balance: str = DEFAULT_BALANCE
    exclude: Tuple[str, ...] = ()

    def compiled(self):
        if self.pattern_type == 'glob':
            return re.compile(fnmatch.translate(self.pattern))
        return re.compile(self.pattern)

    def port_for(self, name):
        """Listening port for ``name``; None if it does not match; raises
        ValueError if it matches but gives no usable port."""
        if name in self.exclude:
            return None
        match = self.compiled().fullmatch(name)
        if not match:
            return None
        number = None
        if 'port' in match.re.groupindex and match.group('port') is not None:
            number = match.group('port')
        else:
            trailing = _TRAILING_NUMBER_RE.search(name)
            if trailing:
                number = trailing.group(1)
        if number is None or not number.isdigit():
            raise ValueError('service %r matches %r but its name carries no port number'
                             % (name, self.pattern))
        port = self.base_port + int(number)
        if not 0 < port < 65536:
            raise ValueError('service %r would listen on port %d, out of range 1-65535' % (name, port))
        return port


class ExposureConfig(NamedTuple):
    services: Tuple[Exposure, ...]
    rule: Optional[ExposureRule]
    reserved_ports: Tuple[int, ...] = ()


def _option_choice(entry, field, choices, default, where):
    value = entry.get(field)
    if value is None:
        return default
    if value not in choices:
        raise ValueError('%s: %s must be one of %s, got %r' % (where, field, ', '.join(choices), value))
    return value


def _option_port(value, where, field='port'):
    try:
        return _check_port(value, field)
    except ServiceDataError as exc:
        raise ValueError('%s: %s' % (where, exc.reason)) from None


def parse_exposures(services=None, rule=None, reserved_ports=(), default_mode=DEFAULT_MODE,
                    default_balance=DEFAULT_BALANCE):
    """Validate the exposure options and return an ExposureConfig.

    ``services``: list of ``{name, port, mode?, balance?}``; each is exposed
    whether or not it currently has instances (the port answers, with no
    server, rather than vanishing).  ``rule``: optional
    ``{pattern, pattern_type?: glob|regex, base_port?, mode?, balance?,
    exclude?}`` (see ExposureRule).  ``reserved_ports`` (for example the stats
    port) may not be used.  Raises ValueError with a message naming the
    offending entry and value.
    """
    if default_mode not in MODES:
        raise ValueError('default mode must be one of %s, got %r' % (', '.join(MODES), default_mode))
    reserved = tuple(sorted({_option_port(p, 'reserved ports') for p in reserved_ports or ()}))
    exposures = []
    used = {}
    for index, entry in enumerate(services or ()):
        where = 'services[%d]' % index
        if not isinstance(entry, dict):
            raise ValueError('%s must be a mapping with name and port, got %r' % (where, entry))
        unknown = sorted(set(entry) - {'name', 'port', 'mode', 'balance'})
        if unknown:
            raise ValueError('%s: unknown option(s) %s' % (where, ', '.join(unknown)))
        if 'name' not in entry or 'port' not in entry:
            raise ValueError('%s: name and port are required, got %r' % (where, entry))
        try:
            name = check_segment('service name', entry['name'])
        except ServiceDataError as exc:
            raise ValueError('%s: %s' % (where, exc.reason))
        port = _option_port(entry['port'], '%s (%s)' % (where, name))
        if port in reserved:
            raise ValueError('%s (%s): port %d is reserved' % (where, name, port))
        if port in used:
            raise ValueError('%s (%s): port %d is already used by service %r'
                             % (where, name, port, used[port]))
        used[port] = name
        exposures.append(Exposure(
            name, port,
            _option_choice(entry, 'mode', MODES, default_mode, where),
            _option_choice(entry, 'balance', BALANCE_ALGORITHMS, default_balance, where),
            'explicit'))
    parsed_rule = None
    if rule:
        where = 'rule'
        if not isinstance(rule, dict):
            raise ValueError('rule must be a mapping with a pattern, got %r' % (rule,))
        unknown = sorted(set(rule) - set(ExposureRule._fields))
        if unknown:
            raise ValueError('rule: unknown option(s) %s' % ', '.join(unknown))
        pattern = rule.get('pattern')
        if not isinstance(pattern, str) or not pattern:
            raise ValueError('rule: pattern must be a non-empty string, got %r' % (pattern,))
        pattern_type = _option_choice(rule, 'pattern_type', PATTERN_TYPES, 'glob', where)
        base_port = rule.get('base_port', 0) or 0
        if isinstance(base_port, bool) or not isinstance(base_port, int) or not 0 <= base_port < 65536:
            raise ValueError('rule: base_port must be an integer in 0-65535, got %r' % (base_port,))
        exclude = rule.get('exclude') or ()
        if isinstance(exclude, str) or not all(isinstance(x, str) for x in exclude):
            raise ValueError('rule: exclude must be a list of service names, got %r' % (exclude,))
        parsed_rule = ExposureRule(
            pattern, pattern_type, base_port,
            _option_choice(rule, 'mode', MODES, default_mode, where),
            _option_choice(rule, 'balance', BALANCE_ALGORITHMS, default_balance, where),
            tuple(exclude))
        try:
            parsed_rule.compiled()
        except re.error as exc:
            raise ValueError('rule: pattern %r is not a valid regular expression: %s' % (pattern, exc))
    return ExposureConfig(tuple(exposures), parsed_rule, reserved)


def select_exposures(config, service_names):
    """Decide what to publish given the services currently in etcd.

    Returns ``(exposures sorted by port, warnings)``.  Explicit entries always
    come first and win every port; a service matched by the rule is skipped
    with a warning when its port is reserved, already taken, or not derivable
    from its name.  Among rule matches, names are taken in sorted order, so
    the result does not depend on the order of ``service_names``.
    """
    exposures = list(config.services)
    taken = {e.port: e.name for e in exposures}
    explicit_names = {e.name for e in exposures}
    warnings = []
    if config.rule is not None:
        for name in sorted(set(service_names)):
            if name in explicit_names:
                continue
            try:
                port = config.rule.port_for(name)
            except ValueError as exc:
                warnings.append(str(exc))
                continue
            if port is None:
                continue
            if port in config.reserved_ports:
                warnings.append('service %r would listen on reserved port %d; not exposed' % (name, port))
                continue
            if port in taken:
                warnings.append('service %r would listen on port %d, already used by %r; not exposed'
                                % (name, port, taken[port]))
                continue
            taken[port] = name
            exposures.append(Exposure(name, port, config.rule.mode, config.rule.balance, 'rule'))
    exposures.sort(key=lambda e: e.port)
    return exposures, warnings


# ---------------------------------------------------------------------------
# Registrator model
# ---------------------------------------------------------------------------

class RegistratorOptions(NamedTuple):
    """How containers become services.

    hostname        first part of every id (the node's name)
    advertise_ip    address registered for ports published on all interfaces
    internal        register the container's own IP and exposed port instead
    explicit        skip ports that have no SERVICE_[<port>_]NAME
    require_healthy containers with a Docker HEALTHCHECK count only when healthy
    use_binding_ip  a port published on one specific address registers that
                    address rather than advertise_ip
    force_tags      tags added to every service
    """
    hostname: str
    advertise_ip: Optional[str] = None
    internal: bool = False
    explicit: bool = False
    require_healthy: bool = True
    use_binding_ip: bool = True
    force_tags: Tuple[str, ...] = ()


def check_options(options):
    """Raise ValueError unless ``options`` is a usable RegistratorOptions."""
    if not isinstance(options, RegistratorOptions):
        raise ValueError('options must be RegistratorOptions, got %r' % (options,))
    hostname = options.hostname
    if not isinstance(hostname, str) or not hostname or _BAD_SEGMENT_RE.search(hostname):
        raise ValueError('hostname must be a non-empty name without "/" or whitespace, got %r'
                         % (hostname,))
    if options.advertise_ip is not None:
        try:
            _check_host(options.advertise_ip)
        except ServiceDataError:
            raise ValueError('advertise_ip must be a specific IP address, got %r'
                             % (options.advertise_ip,)) from None
    if isinstance(options.force_tags, str) or not all(isinstance(t, str) for t in options.force_tags):
        raise ValueError('force_tags must be a list of strings, got %r' % (options.force_tags,))


class Service(NamedTuple):
    """One service instance derived from one container port."""
    name: str
    id: str
    ip: str
    port: int
    tags: Tuple[str, ...]
    attrs: Dict[str, str]
    container: str
    exposed_port: int
    proto: str

    @property
    def backend(self):
        return Backend(self.ip, self.port)

    def key(self, prefix=DEFAULT_PREFIX):
        return service_key(self.name, self.id, prefix)

    def value(self, style='plain'):
        return encode_value(self.ip, self.port, style)


class Skipped(NamedTuple):
    """A container or port that yields no service, and why."""
    container: str
    port: Optional[int]
    proto: Optional[str]
    reason: str


class ContainerServices(NamedTuple):
    services: List[Service]
    skipped: List[Skipped]


class PortBinding(NamedTuple):
    port: int
    proto: str
    host_ip: Optional[str]
    host_port: Optional[int]


def image_service_name(image):
    """Default service name from an image reference: its last path component
    without tag or digest (``registry:5000/team/app:1.2`` -> ``app``).
    Returns None for a bare image id (``sha256:...``)."""
    if not isinstance(image, str) or not image.strip():
        return None
    image = image.strip()
    if image.startswith('sha256:') or re.match(r'^[0-9a-f]{64}$', image):
        return None
    base = posixpath.basename(image.split('@', 1)[0])
    base = base.split(':', 1)[0]
    return base or None


def _env_pairs(env):
    if isinstance(env, dict):
        return [(str(k), '' if v is None else str(v)) for k, v in env.items()]
    pairs = []
    for item in env or ():
        if not isinstance(item, str) or '=' not in item:
            continue
        key, _sep, value = item.partition('=')
        pairs.append((key, value))
    return pairs


def service_metadata(labels, env):
    """All ``SERVICE_*`` settings of a container, labels winning over env.

    Returns ``{suffix: value}`` with the suffix after ``SERVICE_`` lowercased
    (``SERVICE_80_NAME`` -> ``80_name``, ``SERVICE_TAGS`` -> ``tags``).
    """
    merged = OrderedDict()
    for key, value in _env_pairs(env):
        merged[key] = value
    for key, value in (labels or {}).items():
        merged[str(key)] = '' if value is None else str(value)
    meta = OrderedDict()
    for key, value in merged.items():
        if key.startswith('SERVICE_') and len(key) > len('SERVICE_'):
            meta[key[len('SERVICE_'):].lower()] = value
    return meta


def port_metadata(meta, port):
    """Settings for one exposed port: ``SERVICE_<port>_X`` beats ``SERVICE_X``.

    Returns ``(settings, from_port)`` where ``from_port`` is the set of
    settings that came from the port-specific form.
    """
    settings = OrderedDict()
    from_port = set()
    port_prefix = '%d_' % port
    for key, value in meta.items():
        head, sep, rest = key.partition('_')
        if sep and rest and head.isdigit():
            continue
        settings[key] = value
    for key, value in meta.items():
        if key.startswith(port_prefix) and len(key) > len(port_prefix) and value != '':
            settings[key[len(port_prefix):]] = value
            from_port.add(key[len(port_prefix):])
    return settings, from_port


def split_tags(text):
    """Split a comma-separated tag list; ``\\,`` is a literal comma."""
    if not text:
        return []
    tags = []
    current = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == '\\' and index + 1 < len(text) and text[index + 1] == ',':
            current.append(',')
            index += 2
            continue
        if char == ',':
            tags.append(''.join(current))
            current = []
        else:
            current.append(char)
        index += 1
    tags.append(''.join(current))
    return [t.strip() for t in tags if t.strip()]


def _is_wildcard(host_ip):
    if not host_ip:
        return True
    try:
        return ipaddress.ip_address(host_ip).is_unspecified
    except ValueError:
        return False


def _is_loopback(host_ip):
    try:
        return ipaddress.ip_address(host_ip).is_loopback
    except ValueError:
        return False


def _truthy_setting(value):
    return value is not None and value.strip().lower() not in _FALSE_WORDS


def _normalize_ports(container_name, ports):
    bindings = []
    seen = set()
    for entry in ports or ():
        if not isinstance(entry, dict):
            raise ValueError('container %r: port entry must be a mapping, got %r' % (container_name, entry))
        try:
            port = _check_port(entry.get('port'), 'exposed port')
            host_port = entry.get('host_port')
            host_port = None if host_port in (None, '', 0, '0') else _check_port(host_port, 'host port')
        except ServiceDataError as exc:
            raise ValueError('container %r: %s' % (container_name, exc.reason))
        proto = (entry.get('proto') or 'tcp').lower()
        if (port, proto) in seen:
            continue
        seen.add((port, proto))
        bindings.append(PortBinding(port, proto, entry.get('host_ip') or None, host_port))
    return bindings


def container_services(container, options):
    """Services the registrator registers for one container.

    ``container`` is a plain description (see container_from_inspect)::

        {'name': 'kappa-test-1', 'image': 'centos:centos6',
         'labels': {...}, 'env': ['K=V', ...],
         'ports': [{'port': 8000, 'proto': 'tcp',
                    'host_ip': '0.0.0.0', 'host_port': 32771}, ...],
         'ip': '172.17.0.2', 'network_mode': 'bridge',
         'health': None | 'starting' | 'healthy' | 'unhealthy',
         'running': True}

    Rules: a port counts when published on the host (internal mode: every
    exposed port; host network: every exposed port at the same number).
    Name: SERVICE_<port>_NAME, else SERVICE_NAME, else the image's base name
    (container name for a bare image id); with more than one counted port and
    no port-specific name, ``-<port>`` is appended.  SERVICE_[<port>_]IGNORE
    with a value other than empty/0/false/no/off skips the port.  Explicit
    mode skips ports with no name setting.  SERVICE_[<port>_]ID replaces the
    id; SERVICE_[<port>_]TAGS gives tags (plus ``udp`` for UDP ports and
    force_tags); every other SERVICE_* setting becomes an attribute.
    """
    if not isinstance(container, dict):
        raise ValueError('container description must be a mapping, got %r' % (container,))
    check_options(options)
    name = container.get('name')
    if not isinstance(name, str) or not name.strip('/'):
        raise ValueError('container description lacks a name: %r' % (container,))
    name = name.lstrip('/')
    bindings = _normalize_ports(name, container.get('ports'))
    services = []
    skipped = []

    def skip(binding, reason):
        skipped.append(Skipped(name, binding.port if binding else None,
                               binding.proto if binding else None, reason))

    if not container.get('running', True):
        skip(None, 'container is not running')
        return ContainerServices(services, skipped)
    health = container.get('health')
    if options.require_healthy and health not in (None, '', 'none') and health != 'healthy':
        skip(None, 'health check status is %r, waiting for healthy' % (health,))
        return ContainerServices(services, skipped)
    network_mode = container.get('network_mode') or 'default'
    if network_mode.startswith('container:'):
        skip(None, 'container shares the network of %s; its ports belong to that container'
             % network_mode[len('container:'):])
        return ContainerServices(services, skipped)
    if not bindings:
        skip(None, 'no exposed or published ports')
        return ContainerServices(services, skipped)

    host_network = network_mode == 'host'
    eligible = []
    for binding in bindings:
        if host_network and binding.host_port is None:
            binding = binding._replace(host_port=binding.port, host_ip=None)
        if binding.host_port is None and not options.internal:
            skip(binding, 'port is not published on the host')
            continue
        eligible.append(binding)
    is_group = len(eligible) > 1

    meta = service_metadata(container.get('labels'), container.get('env'))
    default_name = image_service_name(container.get('image')) or name
    container_ip = container.get('ip') or None
    keys_seen = {}
    for binding in eligible:
        settings, from_port = port_metadata(meta, binding.port)
        if _truthy_setting(settings.get('ignore')):
            skip(binding, 'SERVICE_IGNORE is set')
            continue
        service_name = settings.get('name') or ''
        if not service_name:
            if options.explicit:
                skip(binding, 'explicit mode and no SERVICE_NAME')
                continue
            service_name = default_name
        if is_group and not ('name' in from_port and settings.get('name')):
            service_name = '%s-%d' % (service_name, binding.port)

        if options.internal:
            ip = container_ip
            if host_network:
                ip = options.advertise_ip
            if not ip:
                skip(binding, 'internal mode but the container has no IP address')
                continue
            port = binding.port
        else:
            port = binding.host_port
            if (options.use_binding_ip and not _is_wildcard(binding.host_ip)):
                if _is_loopback(binding.host_ip):
                    skip(binding, 'published on loopback %s only, unreachable from other nodes'
                         % binding.host_ip)
                    continue
                ip = binding.host_ip
            else:
                ip = options.advertise_ip
            if not ip:
                skip(binding, 'no address to advertise (advertise_ip is not set)')
                continue

        sid = settings.get('id') or service_id(options.hostname, name, binding.port, binding.proto)
        tags = split_tags(settings.get('tags'))
        tags.extend(options.force_tags or ())
        if binding.proto == 'udp':
            tags.append('udp')
        tags = tuple(OrderedDict.fromkeys(tags))
        attrs = OrderedDict(
            (k, v) for k, v in sorted(settings.items())
            if k not in ('name', 'id', 'tags', 'ignore') and not k.split('_', 1)[0].isdigit())
        try:
            check_segment('service name', service_name)
            check_segment('service id', sid)
            address = _check_host(ip)
        except ServiceDataError as exc:
            skip(binding, exc.reason)
            continue
        key = (service_name, sid)
        if key in keys_seen:
            skip(binding, 'same service name and id as port %d' % keys_seen[key])
            continue
        keys_seen[key] = binding.port
        services.append(Service(service_name, sid, address, port, tags, dict(attrs), name,
                                binding.port, binding.proto))
    services.sort(key=lambda s: (s.exposed_port, s.proto))
    return ContainerServices(services, skipped)


def _first_binding(bindings):
    """Pick the binding to register: the first IPv4 (or wildcard) one, else the first."""
    usable = [b for b in bindings or () if isinstance(b, dict) and str(b.get('HostPort') or '').isdigit()]
    if not usable:
        return None
    for binding in usable:
        host_ip = binding.get('HostIp') or ''
        if ':' not in host_ip:
            return binding
    return usable[0]


def container_from_inspect(attrs):
    """Turn a Docker inspect document (``docker inspect`` / SDK ``.attrs``)
    into the plain description container_services reads."""
    if not isinstance(attrs, dict):
        raise ValueError('inspect data must be a mapping, got %r' % (type(attrs).__name__,))
    config = attrs.get('Config') or {}
    host_config = attrs.get('HostConfig') or {}
    settings = attrs.get('NetworkSettings') or {}
    state = attrs.get('State') or {}
    network_mode = host_config.get('NetworkMode') or 'default'

    ports = {}
    for spec, bindings in sorted((settings.get('Ports') or {}).items()):
        number, _sep, proto = spec.partition('/')
        if not number.isdigit():
            continue
        chosen = _first_binding(bindings)
        ports[(int(number), proto or 'tcp')] = {
            'port': int(number), 'proto': proto or 'tcp',
            'host_ip': (chosen.get('HostIp') or None) if chosen else None,
            'host_port': int(chosen['HostPort']) if chosen else None,
        }
    for spec in sorted(config.get('ExposedPorts') or {}):
        number, _sep, proto = spec.partition('/')
        if number.isdigit() and (int(number), proto or 'tcp') not in ports:
            ports[(int(number), proto or 'tcp')] = {
                'port': int(number), 'proto': proto or 'tcp', 'host_ip': None, 'host_port': None}

    ip = settings.get('IPAddress') or None
    networks = settings.get('Networks') or {}
    if not ip and networks:
        ordered = sorted(networks)
        if network_mode in networks:
            ordered.remove(network_mode)
            ordered.insert(0, network_mode)
        for net in ordered:
            candidate = (networks.get(net) or {}).get('IPAddress')
            if candidate:
                ip = candidate
                break

    health = (state.get('Health') or {}).get('Status') or None
    return {
        'id': attrs.get('Id'),
        'name': (attrs.get('Name') or '').lstrip('/'),
        'image': config.get('Image') or attrs.get('Image'),
        'labels': dict(config.get('Labels') or {}),
        'env': list(config.get('Env') or []),
        'ports': [ports[k] for k in sorted(ports)],
        'ip': ip,
        'network_mode': network_mode,
        'health': health,
        # a paused container cannot answer: it counts as not running
        'running': bool(state.get('Running', True)) and not state.get('Paused'),
    }


def published_backend(container, port, proto='tcp', advertise_ip=None, use_binding_ip=True):
    """Where one container port is reachable from other nodes right now.

    For announcers: reads the current host binding of ``port/proto`` from a
    container description and returns a Backend, or raises ValueError naming
    the problem (not published, loopback only, no address to advertise).
    """
    name = (container.get('name') or '?').lstrip('/')
    wanted = (_check_port(port, 'port'), (proto or 'tcp').lower())
    for binding in _normalize_ports(name, container.get('ports')):
        if (binding.port, binding.proto) != wanted:
            continue
        if binding.host_port is None:
            if (container.get('network_mode') or '') == 'host':
                binding = binding._replace(host_port=binding.port)
            else:
                raise ValueError('container %r: port %d/%s is not published on the host'
                                 % ((name,) + wanted))
        if use_binding_ip and not _is_wildcard(binding.host_ip):
            if _is_loopback(binding.host_ip):
                raise ValueError('container %r: port %d/%s is published on loopback %s only'
                                 % ((name,) + wanted + (binding.host_ip,)))
            ip = binding.host_ip
        else:
            ip = advertise_ip
        if not ip:
            raise ValueError('container %r: no address to advertise for port %d/%s' % ((name,) + wanted))
        try:
            return Backend(_check_host(ip), binding.host_port)
        except ServiceDataError as exc:
            raise ValueError('container %r: %s' % (name, exc.reason))
    raise ValueError('container %r has no port %d/%s' % ((name,) + wanted))


class SyncPlan(NamedTuple):
    """What a registrator pass must do.

    put      ``{key: value}`` of every wanted service (sorted by key); write
             all of them when (re)attaching keys to a new TTL or lease
    changed  keys of ``put`` that are missing or hold another value
    delete   keys registered by this host (by id) that no running container
             wants any more: the stale keys
    conflicts messages for wanted keys claimed twice (the first one wins)
    """
    put: Dict[str, str]
    changed: List[str]
    delete: List[str]
    conflicts: List[str]


def plan_sync(services, existing, hostname, prefix=DEFAULT_PREFIX, style='plain'):
    """Compare wanted Service records with the (key, value) pairs read from
    the prefix; values are encoded in ``style`` (see encode_value).  Keys with
    ids this host cannot prove to be its own are never deleted (they expire
    by TTL)."""
    prefix = normalize_prefix(prefix)
    wanted = {}
    owner = {}
    conflicts = []
    for service in sorted(services, key=lambda s: (s.container, s.exposed_port, s.proto)):
        key = service.key(prefix)
        if key in wanted:
            conflicts.append('%s is wanted by %s port %d and by %s port %d; keeping the first'
                             % (key, owner[key][0], owner[key][1], service.container, service.exposed_port))
            continue
        wanted[key] = service.value(style)
        owner[key] = (service.container, service.exposed_port)
    current = {}
    for key, value in existing:
        if value is not None:
            current[_text(key)] = _text(value)
    put = OrderedDict((k, wanted[k]) for k in sorted(wanted))
    changed = [k for k in put if current.get(k) != put[k]]
    delete = [k for k in owned_keys(current, hostname, prefix) if k not in wanted]
    return SyncPlan(put, changed, delete, conflicts)


__all__ = [
    'DEFAULT_PREFIX', 'VALUE_STYLES', 'BAD_ADDRESS', 'BAD_PORT', 'BAD_JSON', 'WRONG_DEPTH',
    'OUTSIDE_PREFIX', 'BAD_NAME', 'MODES', 'DEFAULT_MODE', 'DEFAULT_BALANCE', 'BALANCE_ALGORITHMS',
    'ServiceDataError', 'ServiceKey', 'ServiceId', 'Backend', 'Instance', 'Catalog', 'Exposure',
    'ExposureRule', 'ExposureConfig', 'RegistratorOptions', 'Service', 'Skipped',
    'ContainerServices', 'SyncPlan', 'check_options', 'normalize_prefix', 'check_segment', 'service_dir',
    'service_key', 'parse_key', 'service_id', 'parse_service_id', 'owned_keys', 'format_address',
    'encode_value', 'parse_value', 'parse_entry', 'build_catalog', 'parse_exposures',
    'select_exposures', 'image_service_name', 'service_metadata', 'port_metadata', 'split_tags',
    'container_services', 'container_from_inspect', 'published_backend', 'plan_sync',
]
