# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit names as fleet (and systemd) read them, and the globs that match them.

Name rules, templates and instances, ``fleetctl``'s argument mangling, fleet's
``[X-Fleet]`` specifiers (``%n %N %p %i``), and Go ``path.Match`` globs used
by ``Conflicts``, ``Replaces`` and the modules' name filters.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import UnitNameError

__all__ = [
    'UnitName', 'parse_unit_name', 'validate_unit_name', 'is_valid_unit_name', 'mangle_unit_name',
    'instance_name', 'template_name', 'expand_specifiers',
    'glob_match', 'glob_is_valid', 'glob_is_literal',
    'UNIT_NAME_MAX', 'UNIT_TYPES', 'TEMPLATE_TYPES',
]

UNIT_NAME_MAX = 256
UNIT_TYPES = frozenset((
    'automount', 'busname', 'device', 'mount', 'path', 'scope', 'service',
    'slice', 'snapshot', 'socket', 'swap', 'target', 'timer',
))
TEMPLATE_TYPES = frozenset(('path', 'service', 'socket', 'target', 'timer'))
_NAME_CHARS = frozenset(
    'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@')


@dataclass(frozen=True)
class UnitName:
    """What a unit name says about itself.

    ``foo@bar.service``: name ``foo@bar``, prefix ``foo``, template
    ``foo@.service``, instance ``bar``.  ``foo@.service`` is a template (empty
    instance); ``foo.service`` has neither.
    """

    full_name: str
    name: str
    suffix: str
    prefix: str
    template: str = ''
    instance: str = ''

    @property
    def unit_type(self):
        return self.suffix[1:]

    @property
    def is_instance(self):
        return bool(self.instance)

    @property
    def is_template(self):
        return bool(self.template) and not self.instance


def parse_unit_name(name):
    """Split a unit name into its parts; ``None`` when it has no ``.``."""
    dot = name.rfind('.')
    if dot == -1:
        return None
    base, suffix = name[:dot], name[dot:]
    at = base.find('@')
    if at == -1:
        return UnitName(full_name=name, name=base, suffix=suffix, prefix=base)
    return UnitName(full_name=name, name=base, suffix=suffix, prefix=base[:at],
                    template='%s@%s' % (base[:at], suffix), instance=base[at + 1:])


def validate_unit_name(name):
    """Raise :class:`UnitNameError` unless ``name`` is a unit name fleet accepts."""
    if not isinstance(name, str):
        raise UnitNameError(name, 'unit name must be a string')
    if not name:
        raise UnitNameError(name, 'unit name cannot be empty')
    if len(name) > UNIT_NAME_MAX:
        raise UnitNameError(name, 'unit name exceeds maximum length (%d)' % UNIT_NAME_MAX)
    dot = name.rfind('.')
    if dot == -1:
        raise UnitNameError(name, 'unit name must contain "."')
    if dot == len(name) - 1:
        raise UnitNameError(name, 'unit name cannot end in "."')
    suffix = name[dot + 1:]
    if suffix not in UNIT_TYPES:
        raise UnitNameError(name, 'invalid unit type %r (expected one of %s)'
                            % (suffix, ', '.join(sorted(UNIT_TYPES))))
    if '@' in name and suffix not in TEMPLATE_TYPES:
        raise UnitNameError(name, 'invalid unit type for a template or instance: %r (expected one of %s)'
                            % (suffix, ', '.join(sorted(TEMPLATE_TYPES))))
    for char in name[:dot]:
        if char not in _NAME_CHARS:
            raise UnitNameError(name, 'invalid character %r in unit name' % char)
    if name.startswith('@'):
        raise UnitNameError(name, 'unit name cannot start with "@"')
    return name


def is_valid_unit_name(name):
    try:
        validate_unit_name(name)
    except UnitNameError:
        return False
    return True


def mangle_unit_name(arg):
    """Turn a ``fleetctl`` argument into a unit name.

    Directories are dropped (``units/foo.service`` -> ``foo.service``) and
    ``.service`` is appended when the name does not end in a unit type
    (``apache@1`` -> ``apache@1.service``).
    """
    stripped = arg.rstrip('/')
    if stripped:
        base = stripped.rsplit('/', 1)[-1]
    else:
        base = '/' if arg else '.'
    dot = base.rfind('.')
    if dot == -1 or base[dot + 1:] not in UNIT_TYPES:
        base = base + '.service'
    return base


def instance_name(template, instance):
    """``instance_name('kappa-test@.service', '3')`` -> ``'kappa-test@3.service'``."""
    info = parse_unit_name(template)
    if info is None or not info.is_template:
        raise UnitNameError(template, 'not a template unit name (expected name@.type)')
    if not instance:
        raise UnitNameError(template, 'instance name cannot be empty')
    result = '%s@%s%s' % (info.prefix, instance, info.suffix)
    validate_unit_name(result)
    return result


def template_name(name):
    """The template an instance is made from (``foo@1.service`` -> ``foo@.service``), else ``None``."""
    info = parse_unit_name(name)
    if info is None or not info.is_instance:
        return None
    return info.template


def expand_specifiers(value, name):
    """Expand fleet's specifiers ``%n %N %p %i`` for unit ``name``.

    Only these four are expanded, in that order, as fleet does for the
    [X-Fleet] section; everything else (``%m``, ``%H``, ...) is left for
    systemd on the machine.
    """
    info = parse_unit_name(name) if name else None
    if info is None:
        return value
    value = value.replace('%n', info.full_name)
    value = value.replace('%N', info.name)
    value = value.replace('%p', info.prefix)
    value = value.replace('%i', info.instance)
    return value


# --------------------------------------------------------------------------
# Globs (Go path.Match)
# --------------------------------------------------------------------------

def _glob_tokens(pattern):
    """Compile a Go ``path.Match`` pattern into tokens; raise ValueError if malformed."""
    tokens = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == '*':
            tokens.append(('star',))
            i += 1
        elif ch == '?':
            tokens.append(('any',))
            i += 1
        elif ch == '\\':
            if i + 1 >= n:
                raise ValueError('trailing backslash')
            tokens.append(('lit', pattern[i + 1]))
            i += 2
        elif ch == '[':
            i += 1
            negated = False
            if i < n and pattern[i] == '^':
                negated = True
                i += 1
            ranges = []
            while True:
                if i < n and pattern[i] == ']' and ranges:
                    i += 1
                    break
                lo, i = _glob_class_char(pattern, i)
                hi = lo
                if i < n and pattern[i] == '-':
                    hi, i = _glob_class_char(pattern, i + 1)
                ranges.append((lo, hi))
            tokens.append(('class', negated, tuple(ranges)))
        else:
            tokens.append(('lit', ch))
            i += 1
    return tuple(tokens)


def _glob_class_char(pattern, i):
    n = len(pattern)
    if i >= n or pattern[i] in '-]':
        raise ValueError('bad character class')
    if pattern[i] == '\\':
        i += 1
        if i >= n:
            raise ValueError('trailing backslash in character class')
    return pattern[i], i + 1


def _glob_class_regex(negated, ranges):
    parts = []
    for lo, hi in ranges:
        if lo > hi:
            continue
        if lo == hi:
            parts.append(re.escape(lo))
        else:
            parts.append('%s-%s' % (re.escape(lo), re.escape(hi)))
    if not parts:
        return '(?s:.)' if negated else '(?!)'
    return '[%s%s]' % ('^' if negated else '', ''.join(parts))


@functools.lru_cache(maxsize=4096)
def _glob_regex(pattern):
    """Compiled regular expression for a Go ``path.Match`` pattern, ``None`` if malformed."""
    try:
        tokens = _glob_tokens(pattern)
    except ValueError:
        return None
    out = []
    for token in tokens:
        kind = token[0]
        if kind == 'star':
            out.append('[^/]*')
        elif kind == 'any':
            out.append('[^/]')
        elif kind == 'lit':
            out.append(re.escape(token[1]))
        else:
            out.append(_glob_class_regex(token[1], token[2]))
    return re.compile(''.join(out), re.DOTALL)


def glob_is_valid(pattern):
    return _glob_regex(pattern) is not None


def glob_is_literal(pattern):
    """True when the pattern has no wildcard and matches only itself."""
    return not any(c in pattern for c in '*?[\\')


def glob_match(pattern, name):
    """Go ``path.Match``: ``*`` and ``?`` never match ``/``; ``[^...]`` negates.

    A malformed pattern matches nothing (fleet ignores it the same way).
    """
    if glob_is_literal(pattern):
        return pattern == name
    regex = _glob_regex(pattern)
    if regex is None:
        return False
    return regex.fullmatch(name) is not None
