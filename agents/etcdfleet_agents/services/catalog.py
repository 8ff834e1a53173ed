# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What docker-discover and the ambassadors publish: the catalog of the services prefix and
the exposure rules that give services a listening port.

:func:`build_catalog` turns a recursive read of the prefix into ``{service: [instances]}`` plus
warnings for the entries it skipped; :func:`parse_exposures` and :func:`select_exposures` decide
which services get a listening port.
"""

from __future__ import annotations

import fnmatch
import re
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Tuple

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import (
    DEFAULT_PREFIX,
    Instance,
    ServiceDataError,
    as_text,
    check_port,
    check_service_name,
    normalize_prefix,
    parse_entry,
)

MODES = ('http', 'tcp')
DEFAULT_MODE = 'tcp'
DEFAULT_BALANCE = 'roundrobin'
BALANCE_ALGORITHMS = ('roundrobin', 'static-rr', 'leastconn', 'first', 'source', 'random')
PATTERN_TYPES = ('glob', 'regex')

_TRAILING_NUMBER_RE = re.compile(r'-([0-9]+)$')


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
        key = as_text(key)
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
            # names are checked first (check_service_name): no '/' or line break reaches the glob
            return re.compile(fnmatch.translate(self.pattern))
        return re.compile(self.pattern)

    def port_for(self, name):
        """Listening port for ``name``; None if it does not match (or is no valid
        service name); raises ValueError if it matches but gives no usable port."""
        if name in self.exclude:
            return None
        try:
            check_service_name(name)
        except ServiceDataError:
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
        return check_port(value, field)
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
            name = check_service_name(entry['name'])
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
        for excluded in exclude:
            try:
                check_service_name(excluded)
            except ServiceDataError as exc:
                raise ValueError('rule: exclude: %s' % exc.reason) from None
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
