# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit files as fleet understands them.

This is the single place that knows how a systemd unit file with an
``[X-Fleet]`` section is read, written back in its normalized form, hashed,
named and validated.  The engine, the agent, the ``fleetctl`` command and the
modules all go through it, so a unit has the same hash and the same scheduling
rules everywhere.

Behaviour follows fleet 1.0 where its users depend on it (normalized form and
SHA1 hash, unit name rules, ``[X-Fleet]`` option semantics, specifier
expansion), so that units stored by this collection look the same to fleet's
own ``fleetctl``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

__all__ = [
    'UnitError', 'UnitParseError', 'UnitNameError', 'UnitValidationError',
    'UnitOption', 'UnitFile', 'UnitName', 'FleetOptions',
    'parse_unit', 'serialize_options', 'unit_hash', 'short_hash',
    'hash_to_bytes', 'hash_from_bytes', 'is_valid_hash',
    'parse_unit_name', 'validate_unit_name', 'is_valid_unit_name', 'mangle_unit_name',
    'instance_name', 'template_name', 'expand_specifiers',
    'split_multivalue', 'is_truthy', 'fleet_options', 'validate_unit', 'check_unit',
    'glob_match', 'glob_is_valid', 'glob_is_literal', 'unit_from_options',
    'UNIT_TYPES', 'TEMPLATE_TYPES', 'FLEET_SECTION', 'FLEET_KEYS',
]

FLEET_SECTION = 'X-Fleet'

# Longest physical line accepted in a unit file (systemd's LONG_LINE_MAX).
MAX_LINE_LENGTH = 1024 * 1024

UNIT_NAME_MAX = 256
UNIT_TYPES = frozenset((
    'automount', 'busname', 'device', 'mount', 'path', 'scope', 'service',
    'slice', 'snapshot', 'socket', 'swap', 'target', 'timer',
))
TEMPLATE_TYPES = frozenset(('path', 'service', 'socket', 'target', 'timer'))
_NAME_CHARS = frozenset(
    'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@')

# [X-Fleet] keys: the key as written -> the option it sets.
FLEET_KEYS = {
    'MachineID': 'MachineID',
    'X-ConditionMachineID': 'MachineID',
    'X-ConditionMachineBootID': 'MachineID',
    'MachineOf': 'MachineOf',
    'X-ConditionMachineOf': 'MachineOf',
    'MachineMetadata': 'MachineMetadata',
    'X-ConditionMachineMetadata': 'MachineMetadata',
    'Conflicts': 'Conflicts',
    'X-Conflicts': 'Conflicts',
    'Global': 'Global',
    'Replaces': 'Replaces',
}
_LEGACY_KEYS = {
    'X-ConditionMachineID': 'MachineID',
    'X-ConditionMachineBootID': 'MachineID',
    'X-ConditionMachineOf': 'MachineOf',
    'X-ConditionMachineMetadata': 'MachineMetadata',
    'X-Conflicts': 'Conflicts',
}
# Order in which the keys feeding one option are read (fleet's precedence).
_MACHINE_ID_KEYS = ('MachineID', 'X-ConditionMachineID', 'X-ConditionMachineBootID')
_MACHINE_OF_KEYS = ('X-ConditionMachineOf', 'MachineOf')
_METADATA_KEYS = ('X-ConditionMachineMetadata', 'MachineMetadata')
_CONFLICTS_KEYS = ('X-Conflicts', 'Conflicts')

_TRUTHY = frozenset(('true', 'yes', '1', 'on', 't'))
_FALSY = frozenset(('false', 'no', '0', 'off', 'f', ''))

# Characters Go's unicode.IsSpace accepts below U+0100.
_LATIN1_SPACE = frozenset('\t\n\v\f\r \x85\xa0')


class UnitError(ValueError):
    """Base class of every error raised by this module."""


class UnitParseError(UnitError):
    """The text is not a unit file."""

    def __init__(self, message, line=None):
        self.line = line
        if line is not None:
            message = 'line %d: %s' % (line, message)
        super().__init__(message)


class UnitNameError(UnitError):
    """A unit name breaks fleet's (systemd's) naming rules."""

    def __init__(self, name, reason):
        self.name = name
        self.reason = reason
        super().__init__('invalid unit name %r: %s' % (name, reason))


class UnitValidationError(UnitError):
    """The [X-Fleet] options of a unit cannot be satisfied together."""

    def __init__(self, name, problems):
        self.name = name
        self.problems = list(problems)
        where = ' in %s' % name if name else ''
        super().__init__('invalid [X-Fleet] options%s: %s' % (where, '; '.join(self.problems)))


def _is_space(ch):
    if ord(ch) < 0x100:
        return ch in _LATIN1_SPACE
    return ch.isspace()


def _trim_space(text):
    start, end = 0, len(text)
    while start < end and _is_space(text[start]):
        start += 1
    while end > start and _is_space(text[end - 1]):
        end -= 1
    return text[start:end]


# --------------------------------------------------------------------------
# Parsing and serialization
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitOption:
    """One ``Name=Value`` assignment in a section, in file order."""

    section: str
    name: str
    value: str


class _Lexer:
    """Reads unit text the way fleet's unit parser does.

    Rules: anything before the first ``[section]`` that is not a comment is
    ignored; ``#`` and ``;`` start comments (a comment ending in ``\\``
    continues on the next line); surrounding whitespace of names and values is
    dropped; a value whose line ends in ``\\`` continues on the next line and
    keeps the backslash and line break, as systemd reads it again later; an
    empty line ends a continued value.
    """

    def __init__(self, text):
        self.text = text
        self.pos = 0
        self.options = []

    def _line_no(self, pos=None):
        return self.text.count('\n', 0, self.pos if pos is None else pos) + 1

    def _read_char(self):
        if self.pos >= len(self.text):
            return None
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def _to_eol(self):
        """Return (line, at_eof) and move past the line break."""
        text = self.text
        nl = text.find('\n', self.pos)
        if nl == -1:
            line = text[self.pos:]
            self.pos = len(text)
            eof = True
            if line.endswith('\r'):
                line = line[:-1]
        else:
            line = text[self.pos:nl]
            self.pos = nl + 1
            eof = False
        if len(line) > MAX_LINE_LENGTH:
            raise UnitParseError('line too long (max %d characters)' % MAX_LINE_LENGTH,
                                 self._line_no(self.pos - 1))
        return line, eof

    def _skip_comment(self):
        while True:
            line, eof = self._to_eol()
            if line.endswith(' '):
                line = line[:-1]
            if not line.endswith('\\') or eof:
                return

    def _section_name(self):
        start = self.pos
        end = self.text.find(']', start)
        if end == -1:
            raise UnitParseError('unable to find end of section (missing "]")',
                                 self._line_no(start))
        section = self.text[start:end]
        self.pos = end + 1
        garbage, _eof = self._to_eol()
        if _trim_space(garbage):
            raise UnitParseError('found garbage after section name [%s]: %r'
                                 % (section, _trim_space(garbage)), self._line_no(start))
        return section

    def _option(self, section):
        start = self.pos
        name_chars = []
        while True:
            ch = self._read_char()
            if ch is None:
                raise UnitParseError('unexpected end of file in option name %r (missing "=")'
                                     % _trim_space(''.join(name_chars)), self._line_no(start))
            if ch in '\r\n':
                raise UnitParseError('unexpected newline in option name %r (missing "=")'
                                     % _trim_space(''.join(name_chars)), self._line_no(start))
            if ch == '=':
                break
            name_chars.append(ch)
        name = _trim_space(''.join(name_chars))
        parts = []
        while True:
            line, eof = self._to_eol()
            if not _trim_space(line):
                break
            parts.append(line)
            if not line.endswith('\\'):
                break
            if eof:
                break
            parts.append('\n')
        value = ''.join(parts)
        if value.endswith('\n'):
            value = _trim_space(value) + '\n'
        else:
            value = _trim_space(value)
        self.options.append(UnitOption(section, name, value))

    def run(self):
        section = None
        while True:
            ch = self._read_char()
            if ch is None:
                return self.options
            if ch == '[':
                section = self._section_name()
            elif ch in '#;':
                self._skip_comment()
            elif section is None or _is_space(ch):
                continue
            else:
                self.pos -= 1
                self._option(section)


def serialize_options(options):
    """Write options back as fleet's normalized unit text.

    Sections appear in the order they were first seen, each option of a
    section in file order under it; a blank line separates sections; a section
    with no options does not appear.
    """
    order = []
    grouped = {}
    for opt in options:
        if opt.section not in grouped:
            grouped[opt.section] = []
            order.append(opt.section)
        grouped[opt.section].append(opt)
    chunks = []
    for index, section in enumerate(order):
        chunks.append('[%s]\n' % section)
        for opt in grouped[section]:
            chunks.append('%s=%s\n' % (opt.name, opt.value))
        if index < len(order) - 1:
            chunks.append('\n')
    return ''.join(chunks)


class UnitFile:
    """A parsed unit file: its options, normalized text and hash."""

    __slots__ = ('options', '_text', '_hash', '_contents')

    def __init__(self, options):
        self.options = tuple(options)
        self._text = None
        self._hash = None
        self._contents = None

    @property
    def text(self):
        """The normalized unit text (what fleet stores and ``fleetctl cat`` prints)."""
        if self._text is None:
            self._text = serialize_options(self.options)
        return self._text

    @property
    def hash(self):
        """SHA1 of the normalized text, 40 lowercase hex characters."""
        if self._hash is None:
            self._hash = hashlib.sha1(self.text.encode('utf-8')).hexdigest()
        return self._hash

    @property
    def short_hash(self):
        return short_hash(self.hash)

    @property
    def contents(self):
        """``{section: {name: [values]}}``; [X-Fleet] values split as fleet splits them."""
        if self._contents is None:
            contents = {}
            for opt in self.options:
                values = contents.setdefault(opt.section, {}).setdefault(opt.name, [])
                if opt.section == FLEET_SECTION:
                    values.extend(split_multivalue(opt.value))
                else:
                    values.append(opt.value)
            self._contents = contents
        return self._contents

    @property
    def sections(self):
        seen = []
        for opt in self.options:
            if opt.section not in seen:
                seen.append(opt.section)
        return seen

    def get(self, section, name):
        """All values of ``name`` in ``section`` (empty list when absent)."""
        return list(self.contents.get(section, {}).get(name, []))

    @property
    def description(self):
        values = self.get('Unit', 'Description')
        return values[0] if values else ''

    def fleet_options(self, name=None):
        return fleet_options(self, name)

    def __eq__(self, other):
        if not isinstance(other, UnitFile):
            return NotImplemented
        return self.hash == other.hash

    def __hash__(self):
        return hash(self.hash)

    def __repr__(self):
        return 'UnitFile(hash=%s, options=%d)' % (self.short_hash, len(self.options))


def parse_unit(text):
    """Parse unit text into a :class:`UnitFile`; raises :class:`UnitParseError`."""
    if isinstance(text, bytes):
        try:
            text = text.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise UnitParseError('unit file is not valid UTF-8: %s' % exc)
    if not isinstance(text, str):
        raise UnitParseError('unit file content must be text, not %s' % type(text).__name__)
    return UnitFile(_Lexer(text).run())


def unit_hash(unit):
    """Hash of a unit given as :class:`UnitFile` or unit text."""
    if not isinstance(unit, UnitFile):
        unit = parse_unit(unit)
    return unit.hash


def short_hash(hexhash):
    """First 7 hex characters, as ``fleetctl list-unit-files`` shows them."""
    return hexhash[:7]


def is_valid_hash(hexhash):
    if not isinstance(hexhash, str) or len(hexhash) != 40:
        return False
    try:
        bytes.fromhex(hexhash)
    except ValueError:
        return False
    return True


def hash_to_bytes(hexhash):
    """The 20 raw bytes of a hex SHA1 (fleet stores them as a list of 20 ints)."""
    if not is_valid_hash(hexhash):
        raise UnitError('not a SHA1 hex digest: %r' % (hexhash,))
    return list(bytes.fromhex(hexhash))


def hash_from_bytes(values):
    """Hex SHA1 from 20 ints (0..255)."""
    try:
        raw = bytes(values)
    except (TypeError, ValueError) as exc:
        raise UnitError('unit hash must be 20 integers 0..255: %s' % exc)
    if len(raw) != 20:
        raise UnitError('unit hash must be 20 bytes long, got %d' % len(raw))
    return raw.hex()


# --------------------------------------------------------------------------
# Unit names
# --------------------------------------------------------------------------

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
# [X-Fleet]
# --------------------------------------------------------------------------

def split_multivalue(line):
    """Split an [X-Fleet] value the way fleet does.

    A value that starts and ends with ``"`` holds several quoted values
    separated by spaces (``"region=east" "disk=ssd"``); any other value is a
    single value.
    """
    if not (len(line) >= 1 and line.startswith('"') and line.endswith('"')):
        return [line]
    values = []
    current = []
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            continue
        if ch == ' ' and not quoted:
            values.append(''.join(current))
            current = []
            continue
        current.append(ch)
    values.append(''.join(current))
    return values


def is_truthy(value):
    return value.lower() in _TRUTHY


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


@dataclass(frozen=True)
class FleetOptions:
    """The scheduling rules of one unit, read from its [X-Fleet] section.

    Values are after specifier expansion for ``name`` (when a name was given).
    ``keys`` maps each option (``MachineID``, ``MachineOf``, ...) to the keys
    that set it as written in the file, so messages can name them.
    """

    name: Optional[str] = None
    machine_id: Optional[str] = None
    machine_of: Tuple[str, ...] = ()
    machine_metadata: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    conflicts: Tuple[str, ...] = ()
    is_global: bool = False
    replaces: Tuple[str, ...] = ()
    unknown: Tuple[str, ...] = ()
    deprecated: Tuple[str, ...] = ()
    warnings: Tuple[str, ...] = ()
    keys: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)

    def label(self, option):
        """``'MachineOf'`` or ``'MachineOf (X-ConditionMachineOf)'`` as written."""
        used = [k for k in self.keys.get(option, ()) if k != option]
        if used:
            return '%s (%s)' % (option, ', '.join(used))
        return option

    def metadata_matches(self, metadata):
        """AND across keys, OR within a key."""
        for key, values in self.machine_metadata.items():
            if metadata.get(key) not in values:
                return False
        return True

    def conflicts_with(self, other_name):
        """The first of this unit's Conflicts globs matching ``other_name``, else ``None``."""
        for pattern in self.conflicts:
            if glob_match(pattern, other_name):
                return pattern
        return None

    def replaces_unit(self, other_name):
        for pattern in self.replaces:
            if glob_match(pattern, other_name):
                return pattern
        return None

    def problems(self):
        """Invalid combinations, each as a message naming the options involved."""
        found = []
        for peer in self.machine_of:
            for pattern in self.conflicts:
                if glob_match(pattern, peer):
                    found.append('%s %s matches %s %s, so it can never be satisfied'
                                 % (self.label('MachineOf'), peer, self.label('Conflicts'), pattern))
            for pattern in self.replaces:
                if glob_match(pattern, peer):
                    found.append('%s %s matches %s %s, so it can never be satisfied'
                                 % (self.label('MachineOf'), peer, self.label('Replaces'), pattern))
        has = {
            'MachineID': self.machine_id is not None,
            'MachineOf': bool(self.machine_of),
            'Conflicts': bool(self.conflicts),
            'Global': self.is_global,
            'Replaces': bool(self.replaces),
        }
        for first, second in (('MachineID', 'MachineOf'), ('MachineID', 'Conflicts'),
                              ('MachineID', 'Global'), ('MachineID', 'Replaces'),
                              ('Global', 'MachineOf'), ('Global', 'Replaces'),
                              ('Conflicts', 'Replaces')):
            if has[first] and has[second]:
                found.append('%s cannot be used with %s' % (self.label(first), self.label(second)))
        return found

    def validate(self):
        problems = self.problems()
        if problems:
            raise UnitValidationError(self.name, problems)
        return self


def fleet_options(unit, name=None):
    """Read the [X-Fleet] rules of ``unit`` (a :class:`UnitFile` or text) for unit ``name``.

    Specifiers are expanded for ``name`` unless it is a template name (a
    template is never scheduled, its rules apply to its instances).
    """
    if not isinstance(unit, UnitFile):
        unit = parse_unit(unit)
    section = unit.contents.get(FLEET_SECTION, {})
    info = parse_unit_name(name) if name else None
    expand_for = name if info is not None and not info.is_template else None

    def values_of(key):
        vals = section.get(key, [])
        if expand_for:
            vals = [expand_specifiers(v, expand_for) for v in vals]
        return vals

    warnings = []
    keys = {}
    for key in section:
        option = FLEET_KEYS.get(key)
        if option is not None:
            keys.setdefault(option, []).append(key)
    unknown = tuple(k for k in section if k not in FLEET_KEYS)
    for key in unknown:
        warnings.append('unknown [X-Fleet] option %r is ignored (known: %s)'
                        % (key, ', '.join(sorted(set(FLEET_KEYS.values())))))
    deprecated = tuple(k for k in section if k in _LEGACY_KEYS)

    machine_id = None
    for key in _MACHINE_ID_KEYS:
        vals = [v for v in values_of(key) if v.strip()]
        if vals:
            if machine_id is None:
                machine_id = vals[0].strip()
                extra = sorted(set(v.strip() for v in vals) - {machine_id})
                if extra:
                    warnings.append('%s: several values given, using the first (%s); ignored: %s'
                                    % (key, machine_id, ', '.join(extra)))
            else:
                warnings.append('%s is ignored because MachineID is already set to %s'
                                % (key, machine_id))
    if 'X-ConditionMachineBootID' in section:
        warnings.append('X-ConditionMachineBootID is read as a machine ID; use MachineID')

    machine_of = []
    for key in _MACHINE_OF_KEYS:
        for v in values_of(key):
            v = v.strip()
            if not v:
                warnings.append('empty %s value is ignored' % key)
            elif v not in machine_of:
                machine_of.append(v)

    metadata = {}
    for key in _METADATA_KEYS:
        for pair in values_of(key):
            parts = pair.split('=')
            if len(parts) != 2 or not parts[0] or not parts[1]:
                warnings.append('%s value %r is not key=value and is ignored' % (key, pair))
                continue
            current = metadata.setdefault(parts[0], [])
            if parts[1] not in current:
                current.append(parts[1])

    conflicts = []
    for key in _CONFLICTS_KEYS:
        for v in values_of(key):
            for pattern in v.split():
                if not glob_is_valid(pattern):
                    warnings.append('%s pattern %r is not a valid glob and matches nothing'
                                    % (key, pattern))
                if pattern not in conflicts:
                    conflicts.append(pattern)

    is_global = False
    global_values = values_of('Global')
    if global_values:
        last = global_values[-1].strip()
        is_global = is_truthy(last)
        if last.lower() not in _TRUTHY and last.lower() not in _FALSY:
            warnings.append('Global value %r is not a boolean; read as false' % last)

    replaces = []
    for v in values_of('Replaces'):
        v = v.strip()
        if not v:
            warnings.append('empty Replaces value is ignored')
        elif v not in replaces:
            replaces.append(v)

    return FleetOptions(
        name=name,
        machine_id=machine_id,
        machine_of=tuple(machine_of),
        machine_metadata={k: tuple(v) for k, v in metadata.items()},
        conflicts=tuple(conflicts),
        is_global=is_global,
        replaces=tuple(replaces),
        unknown=unknown,
        deprecated=deprecated,
        warnings=tuple(warnings),
        keys={k: tuple(v) for k, v in keys.items()},
    )


def validate_unit(unit, name=None):
    """Check a unit for submission: name rules and [X-Fleet] combinations.

    Returns ``(UnitFile, FleetOptions)``.  Raises :class:`UnitParseError`,
    :class:`UnitNameError` or :class:`UnitValidationError` with a message
    naming the problem.
    """
    if not isinstance(unit, UnitFile):
        unit = parse_unit(unit)
    if name is not None:
        validate_unit_name(name)
    if not unit.options:
        raise UnitValidationError(name, ['unit file has no options (empty or only comments)'])
    options = fleet_options(unit, name)
    options.validate()
    return unit, options


def check_unit(unit, name=None):
    """Like :func:`validate_unit` but returns the list of warnings only."""
    return list(validate_unit(unit, name)[1].warnings)


def unit_from_options(options):
    """Build a :class:`UnitFile` from ``(section, name, value)`` triples or dicts."""
    result = []
    for opt in options:
        if isinstance(opt, UnitOption):
            result.append(opt)
        elif isinstance(opt, Mapping):
            result.append(UnitOption(opt['section'], opt['name'], opt['value']))
        else:
            section, key, value = opt
            result.append(UnitOption(section, key, value))
    return UnitFile(result)
