# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils import units as U
from ansible_collections.etcdfleet.cluster.plugins.module_utils import unit_rules as X

from seed_units import KAPPA_TEMPLATE


# ---------------------------------------------------------------- specifiers in [X-Fleet]

def test_specifiers_expanded_only_in_x_fleet():
    text = ('[Unit]\nDescription=Announce %i\nBindsTo=apache@%i.service\n\n'
            '[Service]\nExecStart=/bin/echo %n %i\n\n[X-Fleet]\nMachineOf=apache@%i.service\n'
            'Conflicts=%p@*.service\nMachineMetadata=role=%N\n')
    unit = U.parse_unit(text)
    opts = X.fleet_options(unit, 'apache_discovery@1.service')
    assert opts.machine_of == ('apache@1.service',)
    assert opts.conflicts == ('apache_discovery@*.service',)
    assert opts.machine_metadata == {'role': ('apache_discovery@1',)}
    # the unit text itself is untouched: systemd expands the rest on the machine
    assert 'ExecStart=/bin/echo %n %i' in unit.text
    assert 'BindsTo=apache@%i.service' in unit.text
    # an instance shares its template's content and hash
    assert U.parse_unit(text).hash == unit.hash


def test_template_rules_are_not_expanded():
    opts = X.fleet_options('[X-Fleet]\nMachineOf=apache@%i.service\n', 'apache_discovery@.service')
    assert opts.machine_of == ('apache@%i.service',)


# ---------------------------------------------------------------- [X-Fleet]

def test_fleet_options_seed_kappa():
    opts = X.fleet_options(U.parse_unit(KAPPA_TEMPLATE), 'kappa-test@2.service')
    assert opts.conflicts == ('kappa-test@*.service',)
    assert opts.deprecated == ('X-Conflicts',)
    assert opts.label('Conflicts') == 'Conflicts (X-Conflicts)'
    assert opts.conflicts_with('kappa-test@1.service') == 'kappa-test@*.service'
    assert opts.conflicts_with('other.service') is None
    assert opts.warnings == ()
    assert not opts.is_global and opts.machine_id is None


def test_legacy_names_map_to_options():
    opts = X.fleet_options(
        '[X-Fleet]\nX-ConditionMachineOf=apache.service\nX-ConditionMachineMetadata=disk=ssd\n'
        'X-Conflicts=a*.service b*.service\nX-ConditionMachineID=abc\n')
    assert opts.machine_of == ('apache.service',)
    assert opts.machine_metadata == {'disk': ('ssd',)}
    assert opts.conflicts == ('a*.service', 'b*.service')
    assert opts.machine_id == 'abc'
    assert set(opts.deprecated) == {'X-ConditionMachineOf', 'X-ConditionMachineMetadata',
                                    'X-Conflicts', 'X-ConditionMachineID'}


def test_machine_boot_id_reads_as_machine_id():
    opts = X.fleet_options('[X-Fleet]\nX-ConditionMachineBootID=feedbeef\n')
    assert opts.machine_id == 'feedbeef'
    assert any('X-ConditionMachineBootID' in w for w in opts.warnings)


def test_machine_id_first_value_wins():
    opts = X.fleet_options('[X-Fleet]\nMachineID=first\nMachineID=second\nX-ConditionMachineID=third\n')
    assert opts.machine_id == 'first'
    assert any('second' in w for w in opts.warnings)
    assert any('X-ConditionMachineID is ignored' in w for w in opts.warnings)


def test_metadata_and_across_keys_or_within_key():
    opts = X.fleet_options('[X-Fleet]\nMachineMetadata="region=us-east-1" "diskType=SSD"\n'
                           'MachineMetadata=region=us-west-1\n')
    assert opts.machine_metadata == {'region': ('us-east-1', 'us-west-1'), 'diskType': ('SSD',)}
    assert opts.metadata_matches({'region': 'us-west-1', 'diskType': 'SSD'})
    assert opts.metadata_matches({'region': 'us-east-1', 'diskType': 'SSD', 'extra': 'x'})
    assert not opts.metadata_matches({'region': 'us-east-1'})
    assert not opts.metadata_matches({'region': 'eu', 'diskType': 'SSD'})
    assert not opts.metadata_matches({})


def test_metadata_bad_pairs_are_warned_and_ignored():
    opts = X.fleet_options('[X-Fleet]\nMachineMetadata=region\nMachineMetadata=a=b=c\n'
                           'MachineMetadata==x\nMachineMetadata=k=\nMachineMetadata=ok=yes\n')
    assert opts.machine_metadata == {'ok': ('yes',)}
    assert len([w for w in opts.warnings if 'not key=value' in w]) == 4


@pytest.mark.parametrize('values,expected', [
    (['true'], True), (['yes'], True), (['1'], True), (['on'], True), (['t'], True),
    (['TRUE'], True), (['false'], False), (['no'], False), (['true', 'false'], False),
    (['false', 'yes'], True),
])
def test_global_last_value_wins(values, expected):
    text = '[X-Fleet]\n' + ''.join('Global=%s\n' % v for v in values)
    assert X.fleet_options(text).is_global is expected


def test_global_non_boolean_warns():
    opts = X.fleet_options('[X-Fleet]\nGlobal=maybe\n')
    assert opts.is_global is False
    assert any('not a boolean' in w for w in opts.warnings)


def test_unknown_keys_are_warnings():
    opts = X.fleet_options('[X-Fleet]\nMachineOf=a.service\nMachineIDs=oops\nPriority=5\n')
    assert opts.unknown == ('MachineIDs', 'Priority')
    assert len(opts.warnings) == 2
    assert "'MachineIDs'" in opts.warnings[0]
    assert X.check_unit('[Service]\nExecStart=/x\n[X-Fleet]\nPriority=5\n', 'x.service') == \
        list(opts.warnings[1:])


def test_bad_conflict_glob_warns():
    opts = X.fleet_options('[X-Fleet]\nConflicts=web[.service\n')
    assert any('not a valid glob' in w for w in opts.warnings)
    assert opts.conflicts_with('web[.service') is None


def test_empty_values_ignored_with_warning():
    opts = X.fleet_options('[X-Fleet]\nMachineOf=\nReplaces=\n')
    assert opts.machine_of == () and opts.replaces == ()
    assert len(opts.warnings) == 2


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize('xfleet,message', [
    ('MachineID=abc\nMachineOf=a.service', 'MachineID cannot be used with MachineOf'),
    ('MachineID=abc\nConflicts=a*', 'MachineID cannot be used with Conflicts'),
    ('MachineID=abc\nGlobal=true', 'MachineID cannot be used with Global'),
    ('MachineID=abc\nReplaces=a.service', 'MachineID cannot be used with Replaces'),
    ('Global=true\nMachineOf=a.service', 'Global cannot be used with MachineOf'),
    ('Global=true\nReplaces=a.service', 'Global cannot be used with Replaces'),
    ('Conflicts=a*\nReplaces=b.service', 'Conflicts cannot be used with Replaces'),
    ('X-ConditionMachineOf=web.service\nX-Conflicts=web*',
     'MachineOf (X-ConditionMachineOf) web.service matches Conflicts (X-Conflicts) web*'),
    ('MachineOf=web.service\nReplaces=web.*', 'MachineOf web.service matches Replaces web.*'),
    ('X-ConditionMachineID=abc\nX-Conflicts=a*',
     'MachineID (X-ConditionMachineID) cannot be used with Conflicts (X-Conflicts)'),
])
def test_invalid_combinations_are_named(xfleet, message):
    text = '[Service]\nExecStart=/bin/true\n\n[X-Fleet]\n%s\n' % xfleet
    with pytest.raises(U.UnitValidationError) as err:
        X.validate_unit(text, 'probe.service')
    assert message in str(err.value)
    assert 'probe.service' in str(err.value)
    assert message in err.value.problems[0] or any(message in p for p in err.value.problems)


def test_global_false_does_not_clash():
    X.validate_unit('[Service]\nExecStart=/x\n[X-Fleet]\nGlobal=false\nMachineOf=a.service\n',
                    'b.service')


def test_several_problems_reported_together():
    with pytest.raises(U.UnitValidationError) as err:
        X.validate_unit('[Service]\nExecStart=/x\n[X-Fleet]\nMachineID=abc\nGlobal=true\nMachineOf=a.service\n',
                        'b.service')
    assert len(err.value.problems) == 3


def test_specifier_expansion_applies_to_validation():
    text = '[Service]\nExecStart=/x\n[X-Fleet]\nMachineOf=%p-peer.service\nConflicts=foo-*.service\n'
    with pytest.raises(U.UnitValidationError):
        X.validate_unit(text, 'foo.service')
    X.validate_unit(text, 'bar.service')


def test_validate_unit_checks_name_and_emptiness():
    with pytest.raises(U.UnitNameError):
        X.validate_unit(KAPPA_TEMPLATE, 'kappa-test@.mount')
    with pytest.raises(U.UnitValidationError) as err:
        X.validate_unit('# nothing\n', 'empty.service')
    assert 'no options' in str(err.value)


def test_seed_units_are_valid():
    unit, opts = X.validate_unit(KAPPA_TEMPLATE, 'kappa-test@.service')
    assert unit.hash == U.unit_hash(KAPPA_TEMPLATE)
    X.validate_unit('[Service]\nExecStart=/x\n\n[X-Fleet]\nX-ConditionMachineOf=apache.service\n',
                    'etcd-amb-apache.service')
    X.validate_unit('[Service]\nExecStart=/x\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=disk=ssd\n'
                    'Conflicts=webapp*\n', 'monitor.service')
