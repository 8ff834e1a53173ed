# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service model: which services one container offers (the registrator's rules).

:func:`container_services` turns a plain container description (see
``etcdfleet_agents.docker.inspect.container_from_inspect``) into :class:`Service` records;
:func:`published_backend` says where one container port is reachable (for announcers).
Keys and values follow ``plugins/module_utils/service_keys.py``.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Tuple

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import (
    DEFAULT_PREFIX,
    Backend,
    ServiceDataError,
    check_host,
    check_port,
    check_segment,
    check_service_name,
    encode_value,
    service_id,
    service_key,
)

_FALSE_WORDS = ('', '0', 'false', 'no', 'off')


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
    try:
        check_segment('hostname', options.hostname)
    except ServiceDataError as exc:
        raise ValueError(exc.reason) from None
    if options.advertise_ip is not None:
        try:
            check_host(options.advertise_ip)
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
            port = check_port(entry.get('port'), 'exposed port')
            host_port = entry.get('host_port')
            host_port = None if host_port in (None, '', 0, '0') else check_port(host_port, 'host port')
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
            check_service_name(service_name)
            check_segment('service id', sid)
            address = check_host(ip)
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


def published_backend(container, port, proto='tcp', advertise_ip=None, use_binding_ip=True):
    """Where one container port is reachable from other nodes right now.

    For announcers: reads the current host binding of ``port/proto`` from a
    container description and returns a Backend, or raises ValueError naming
    the problem (not published, loopback only, no address to advertise).
    """
    name = (container.get('name') or '?').lstrip('/')
    wanted = (check_port(port, 'port'), (proto or 'tcp').lower())
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
            return Backend(check_host(ip), binding.host_port)
        except ServiceDataError as exc:
            raise ValueError('container %r: %s' % (name, exc.reason))
    raise ValueError('container %r has no port %d/%s' % ((name,) + wanted))
