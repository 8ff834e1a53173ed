# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit files as fleet understands them: parsing, normalized text, hash.

This is the single place that knows how a systemd unit file (with its
``[X-Fleet]`` section) is read and written back in its normalized form and
hashed.  The engine, the agent, ``fleetctl`` and the modules all go through it,
so a unit has the same hash everywhere.  Unit names and the globs matching
them are in ``unit_names``; the ``[X-Fleet]`` scheduling rules in
``unit_rules``.

Behaviour follows fleet 1.0 where its users depend on it (normalized form and
SHA1 hash), so that units stored by this collection look the same to fleet's
own ``fleetctl``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping

__all__ = [
    'UnitError', 'UnitParseError', 'UnitNameError', 'UnitValidationError',
    'UnitOption', 'UnitFile', 'parse_unit', 'serialize_options', 'unit_hash', 'short_hash',
    'hash_to_bytes', 'hash_from_bytes', 'is_valid_hash', 'split_multivalue', 'unit_from_options',
    'FLEET_SECTION', 'MAX_LINE_LENGTH',
]

FLEET_SECTION = 'X-Fleet'

# Longest physical line accepted in a unit file (systemd's LONG_LINE_MAX).
MAX_LINE_LENGTH = 1024 * 1024

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
# [X-Fleet] values
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
