# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``[X-Fleet]`` scheduling rules of a unit, read and validated as fleet does.

``fleet_options`` reads ``MachineID``, ``MachineOf``, ``MachineMetadata``,
``Conflicts``, ``Global`` and ``Replaces`` (and their legacy ``X-Condition*``
names) into :class:`FleetOptions`; ``validate_unit`` checks a unit for
submission.  Placement itself is the engine's business (the agents package).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import (
    FLEET_SECTION,
    UnitFile,
    UnitValidationError,
    parse_unit,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_names import (
    expand_specifiers,
    glob_is_valid,
    glob_match,
    parse_unit_name,
    validate_unit_name,
)

__all__ = ['FleetOptions', 'fleet_options', 'validate_unit', 'check_unit', 'is_truthy', 'FLEET_KEYS']

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


def is_truthy(value):
    return value.lower() in _TRUTHY


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
