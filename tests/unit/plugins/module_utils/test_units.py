# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils import units as U

# The unit as fleet 1.0's `fleetctl cat kappa-test@.service` printed it in the
# seed article; the same article's `fleetctl list-unit-files --full` shows its
# hash as 559024d01378ac913e63c18dfd75f7a58d1f0bf8.  (The backslash at the end
# of the ExecStart line only joins the Python source lines: it is one line.)
KAPPA_CAT = """[Unit]
Description=kappa-test
After=docker.service
Requires=docker.service

[Service]
ExecStartPre=-/usr/bin/docker kill kappa-test-%i
ExecStartPre=-/usr/bin/docker rm kappa-test-%i
ExecStart=/usr/bin/docker run --name=kappa-test-%i --hostname=kappa-test-%i -p 8000 centos:centos6 \
/bin/sh -c 'cd /tmp/ ; hostname -s > index.html ; python -m SimpleHTTPServer'
ExecStop=/usr/bin/docker stop kappa-test-%i

[Install]
WantedBy=multi-user.target

[X-Fleet]
X-Conflicts=kappa-test-@*.service
"""
KAPPA_FLEET_HASH = '559024d01378ac913e63c18dfd75f7a58d1f0bf8'

KAPPA_TEMPLATE = KAPPA_CAT.replace('kappa-test-@*.service', 'kappa-test@*.service')


# ---------------------------------------------------------------- hashing

def test_hash_matches_fleet_for_seed_unit():
    unit = U.parse_unit(KAPPA_CAT)
    assert unit.hash == KAPPA_FLEET_HASH
    assert unit.short_hash == '559024d'
    assert unit.text == KAPPA_CAT


def test_hash_is_sha1_of_normalized_text():
    unit = U.parse_unit(KAPPA_TEMPLATE)
    assert unit.hash == hashlib.sha1(unit.text.encode('utf-8')).hexdigest()
    assert U.unit_hash(KAPPA_TEMPLATE) == unit.hash
    assert U.unit_hash(unit) == unit.hash


def test_hash_stable_across_whitespace_and_comments():
    messy = (
        '# leading comment\n'
        '; another\n'
        'stray text before the first section is ignored\n'
        '\n\n'
        '[Unit]   \n'
        '   Description   =   kappa-test   \n'
        '# comment in a section\n'
        'After=docker.service\r\n'
        '\tRequires=docker.service\n'
        '\n'
        '[Service]\n'
        'ExecStartPre=-/usr/bin/docker kill kappa-test-%i\n'
        '  ; indented comment\n'
        'ExecStartPre=-/usr/bin/docker rm kappa-test-%i\n'
        "ExecStart=/usr/bin/docker run --name=kappa-test-%i --hostname=kappa-test-%i -p 8000 "
        "centos:centos6 /bin/sh -c 'cd /tmp/ ; hostname -s > index.html ; python -m SimpleHTTPServer'\n"
        'ExecStop=/usr/bin/docker stop kappa-test-%i\n'
        '[Install]\n'
        'WantedBy=multi-user.target\n'
        '[X-Fleet]\n'
        'X-Conflicts=kappa-test-@*.service'  # no final newline
    )
    assert U.parse_unit(messy).hash == KAPPA_FLEET_HASH
    assert U.parse_unit(messy).text == KAPPA_CAT


def test_hash_changes_with_content_and_order():
    base = U.parse_unit('[Service]\nExecStart=/bin/true\nUser=nobody\n')
    assert base.hash != U.parse_unit('[Service]\nExecStart=/bin/false\nUser=nobody\n').hash
    # order of options inside a section is part of the unit (repeated keys matter)
    assert base.hash != U.parse_unit('[Service]\nUser=nobody\nExecStart=/bin/true\n').hash


def test_hash_bytes_round_trip():
    ints = U.hash_to_bytes(KAPPA_FLEET_HASH)
    assert len(ints) == 20 and ints[:3] == [0x55, 0x90, 0x24]
    assert U.hash_from_bytes(ints) == KAPPA_FLEET_HASH
    with pytest.raises(U.UnitError):
        U.hash_from_bytes(ints[:19])
    with pytest.raises(U.UnitError):
        U.hash_to_bytes('xyz')
    assert not U.is_valid_hash('g' * 40)
    assert U.is_valid_hash(KAPPA_FLEET_HASH)


# ---------------------------------------------------------------- parsing

def test_repeated_keys_and_sections_keep_order_and_merge():
    unit = U.parse_unit(
        '[Service]\nExecStartPre=/a\n[Unit]\nDescription=x\n[Service]\nExecStartPre=/b\nExecStart=/c\n')
    assert unit.get('Service', 'ExecStartPre') == ['/a', '/b']
    assert unit.sections == ['Service', 'Unit']
    assert unit.text == '[Service]\nExecStartPre=/a\nExecStartPre=/b\nExecStart=/c\n\n[Unit]\nDescription=x\n'


def test_section_without_options_disappears():
    unit = U.parse_unit('[Unit]\nDescription=d\n\n[Install]\n\n[Service]\nExecStart=/bin/true\n')
    assert unit.sections == ['Unit', 'Service']
    assert '[Install]' not in unit.text


def test_line_continuation_is_kept_for_systemd():
    text = '[Service]\nExecStart=/bin/sh -c \\\n    "echo one; \\\n     echo two"\nUser=root\n'
    unit = U.parse_unit(text)
    assert unit.get('Service', 'ExecStart') == ['/bin/sh -c \\\n    "echo one; \\\n     echo two"']
    assert unit.get('Service', 'User') == ['root']
    assert unit.text == text
    # normalizing twice changes nothing
    assert U.parse_unit(unit.text).hash == unit.hash


def test_empty_line_ends_a_continuation():
    unit = U.parse_unit('[Service]\nExecStart=/bin/echo \\\n\nUser=root\n')
    assert unit.get('Service', 'ExecStart') == ['/bin/echo \\\n']
    assert unit.get('Service', 'User') == ['root']
    assert U.parse_unit(unit.text).hash == unit.hash


def test_backslash_followed_by_space_is_not_a_continuation():
    unit = U.parse_unit('[Service]\nExecStart=/bin/echo \\ \nUser=root\n')
    assert unit.get('Service', 'ExecStart') == ['/bin/echo \\']
    assert unit.get('Service', 'User') == ['root']


def test_comment_continuation_swallows_next_line():
    unit = U.parse_unit('[Service]\n# a comment \\\nExecStart=/hidden\nUser=root\n')
    assert unit.get('Service', 'ExecStart') == []
    assert unit.get('Service', 'User') == ['root']


def test_inline_hash_is_part_of_the_value():
    unit = U.parse_unit('[Service]\nEnvironment=A=1 # not a comment\n')
    assert unit.get('Service', 'Environment') == ['A=1 # not a comment']


def test_empty_value_and_spaces_around_equals():
    unit = U.parse_unit('[Service]\nExecStart=\n  Restart  =  always  \n')
    assert unit.get('Service', 'ExecStart') == ['']
    assert unit.get('Service', 'Restart') == ['always']
    assert unit.text == '[Service]\nExecStart=\nRestart=always\n'


def test_crlf_line_endings():
    unit = U.parse_unit('[Unit]\r\nDescription=crlf\r\n\r\n[Service]\r\nExecStart=/bin/true\r\n')
    assert unit.text == '[Unit]\nDescription=crlf\n\n[Service]\nExecStart=/bin/true\n'


def test_description_and_bytes_input():
    unit = U.parse_unit(KAPPA_TEMPLATE.encode('utf-8'))
    assert unit.description == 'kappa-test'
    assert U.parse_unit('[Service]\nExecStart=/x\n').description == ''


def test_empty_text_has_no_options():
    unit = U.parse_unit('# only a comment\n')
    assert unit.options == ()
    assert unit.text == ''


@pytest.mark.parametrize('text,needle', [
    ('[Unit\nDescription=x\n', 'end of section'),
    ('[Unit] trailing\nDescription=x\n', 'garbage after section name [Unit]'),
    ('[Unit]\nDescription\nAfter=x\n', "newline in option name 'Description'"),
    ('[Unit]\nDescription', "end of file in option name 'Description'"),
])
def test_parse_errors_name_the_problem(text, needle):
    with pytest.raises(U.UnitParseError) as err:
        U.parse_unit(text)
    assert needle in str(err.value)
    assert 'line ' in str(err.value)


def test_parse_error_reports_line_number():
    with pytest.raises(U.UnitParseError) as err:
        U.parse_unit('[Unit]\nDescription=x\n\nBroken\n')
    assert err.value.line == 4


def test_line_too_long():
    with pytest.raises(U.UnitParseError) as err:
        U.parse_unit('[Service]\nExecStart=' + 'x' * (U.MAX_LINE_LENGTH + 1) + '\n')
    assert 'too long' in str(err.value)


def test_invalid_utf8_and_wrong_type():
    with pytest.raises(U.UnitParseError):
        U.parse_unit(b'[Unit]\nDescription=\xff\n')
    with pytest.raises(U.UnitParseError):
        U.parse_unit(42)


def test_unit_from_options_and_equality():
    unit = U.unit_from_options([('Service', 'ExecStart', '/bin/true'),
                                {'section': 'Unit', 'name': 'Description', 'value': 'd'}])
    assert unit.text == '[Service]\nExecStart=/bin/true\n\n[Unit]\nDescription=d\n'
    assert unit == U.parse_unit(unit.text)
    assert unit != U.parse_unit('[Service]\nExecStart=/bin/false\n')


# ---------------------------------------------------------------- names

@pytest.mark.parametrize('name', [
    'hello.service', 'kappa-test@.service', 'kappa-test@1.service', 'a:b_c.d-e.socket',
    'web@my.instance.timer', 'dev-sda1.device', 'x\\x2dy.mount', 'x' * 248 + '.service',
])
def test_valid_unit_names(name):
    assert U.validate_unit_name(name) == name
    assert U.is_valid_unit_name(name)


@pytest.mark.parametrize('name,reason', [
    ('', 'cannot be empty'),
    ('x' * 250 + '.service', 'maximum length'),
    ('hello', 'must contain "."'),
    ('hello.', 'cannot end in "."'),
    ('hello.txt', "invalid unit type 'txt'"),
    ('data@1.mount', 'template or instance'),
    ('he llo.service', "invalid character ' '"),
    ('a/b.service', "invalid character '/'"),
    ('@x.service', 'cannot start with "@"'),
])
def test_invalid_unit_names(name, reason):
    with pytest.raises(U.UnitNameError) as err:
        U.validate_unit_name(name)
    assert reason in str(err.value)
    assert repr(name) in str(err.value)
    assert not U.is_valid_unit_name(name)


def test_parse_unit_name_parts():
    plain = U.parse_unit_name('hello.service')
    assert (plain.name, plain.prefix, plain.template, plain.instance) == ('hello', 'hello', '', '')
    assert not plain.is_template and not plain.is_instance
    tmpl = U.parse_unit_name('kappa-test@.service')
    assert tmpl.is_template and not tmpl.is_instance and tmpl.template == 'kappa-test@.service'
    inst = U.parse_unit_name('kappa-test@3.service')
    assert inst.is_instance and not inst.is_template
    assert (inst.name, inst.prefix, inst.template, inst.instance, inst.unit_type) == \
        ('kappa-test@3', 'kappa-test', 'kappa-test@.service', '3', 'service')
    nested = U.parse_unit_name('a@b@c.socket')
    assert (nested.prefix, nested.instance, nested.template) == ('a', 'b@c', 'a@.socket')
    assert U.parse_unit_name('nodot') is None


def test_instances_and_templates():
    assert U.instance_name('kappa-test@.service', '3') == 'kappa-test@3.service'
    assert U.template_name('kappa-test@3.service') == 'kappa-test@.service'
    assert U.template_name('kappa-test@.service') is None
    assert U.template_name('hello.service') is None
    with pytest.raises(U.UnitNameError):
        U.instance_name('hello.service', '1')
    with pytest.raises(U.UnitNameError):
        U.instance_name('kappa-test@.service', '')
    with pytest.raises(U.UnitNameError):
        U.instance_name('kappa-test@.service', 'a b')


@pytest.mark.parametrize('arg,name', [
    ('apache@1', 'apache@1.service'),
    ('kappa-test@2.service', 'kappa-test@2.service'),
    ('/home/core/units/hello.service', 'hello.service'),
    ('units/dir/', 'dir.service'),
    ('web.target', 'web.target'),
    ('backup.timer', 'backup.timer'),
    ('my.app', 'my.app.service'),
])
def test_mangle_unit_name(arg, name):
    assert U.mangle_unit_name(arg) == name


# ---------------------------------------------------------------- specifiers

def test_expand_specifiers():
    assert U.expand_specifiers('%n|%N|%p|%i|%m|%H', 'apache@2.service') == \
        'apache@2.service|apache@2|apache|2|%m|%H'
    assert U.expand_specifiers('%p.socket', 'foo.service') == 'foo.socket'
    assert U.expand_specifiers('%i', 'foo.service') == ''
    assert U.expand_specifiers('%n', None) == '%n'


def test_specifiers_expanded_only_in_x_fleet():
    text = ('[Unit]\nDescription=Announce %i\nBindsTo=apache@%i.service\n\n'
            '[Service]\nExecStart=/bin/echo %n %i\n\n[X-Fleet]\nMachineOf=apache@%i.service\n'
            'Conflicts=%p@*.service\nMachineMetadata=role=%N\n')
    unit = U.parse_unit(text)
    opts = U.fleet_options(unit, 'apache_discovery@1.service')
    assert opts.machine_of == ('apache@1.service',)
    assert opts.conflicts == ('apache_discovery@*.service',)
    assert opts.machine_metadata == {'role': ('apache_discovery@1',)}
    # the unit text itself is untouched: systemd expands the rest on the machine
    assert 'ExecStart=/bin/echo %n %i' in unit.text
    assert 'BindsTo=apache@%i.service' in unit.text
    # an instance shares its template's content and hash
    assert U.parse_unit(text).hash == unit.hash


def test_template_rules_are_not_expanded():
    opts = U.fleet_options('[X-Fleet]\nMachineOf=apache@%i.service\n', 'apache_discovery@.service')
    assert opts.machine_of == ('apache@%i.service',)


# ---------------------------------------------------------------- [X-Fleet]

@pytest.mark.parametrize('line,values', [
    ('region=east', ['region=east']),
    ('"region=east" "disk=ssd"', ['region=east', 'disk=ssd']),
    ('"region=us east"', ['region=us east']),
    ('"a=b"  "c=d"', ['a=b', '', 'c=d']),
    ('"a=b" c=d', ['"a=b" c=d']),
    ('a=b "c=d"', ['a=b "c=d"']),
    ('"', ['']),
])
def test_split_multivalue(line, values):
    assert U.split_multivalue(line) == values


def test_fleet_options_seed_kappa():
    opts = U.fleet_options(U.parse_unit(KAPPA_TEMPLATE), 'kappa-test@2.service')
    assert opts.conflicts == ('kappa-test@*.service',)
    assert opts.deprecated == ('X-Conflicts',)
    assert opts.label('Conflicts') == 'Conflicts (X-Conflicts)'
    assert opts.conflicts_with('kappa-test@1.service') == 'kappa-test@*.service'
    assert opts.conflicts_with('other.service') is None
    assert opts.warnings == ()
    assert not opts.is_global and opts.machine_id is None


def test_legacy_names_map_to_options():
    opts = U.fleet_options(
        '[X-Fleet]\nX-ConditionMachineOf=apache.service\nX-ConditionMachineMetadata=disk=ssd\n'
        'X-Conflicts=a*.service b*.service\nX-ConditionMachineID=abc\n')
    assert opts.machine_of == ('apache.service',)
    assert opts.machine_metadata == {'disk': ('ssd',)}
    assert opts.conflicts == ('a*.service', 'b*.service')
    assert opts.machine_id == 'abc'
    assert set(opts.deprecated) == {'X-ConditionMachineOf', 'X-ConditionMachineMetadata',
                                    'X-Conflicts', 'X-ConditionMachineID'}


def test_machine_boot_id_reads_as_machine_id():
    opts = U.fleet_options('[X-Fleet]\nX-ConditionMachineBootID=feedbeef\n')
    assert opts.machine_id == 'feedbeef'
    assert any('X-ConditionMachineBootID' in w for w in opts.warnings)


def test_machine_id_first_value_wins():
    opts = U.fleet_options('[X-Fleet]\nMachineID=first\nMachineID=second\nX-ConditionMachineID=third\n')
    assert opts.machine_id == 'first'
    assert any('second' in w for w in opts.warnings)
    assert any('X-ConditionMachineID is ignored' in w for w in opts.warnings)


def test_metadata_and_across_keys_or_within_key():
    opts = U.fleet_options('[X-Fleet]\nMachineMetadata="region=us-east-1" "diskType=SSD"\n'
                           'MachineMetadata=region=us-west-1\n')
    assert opts.machine_metadata == {'region': ('us-east-1', 'us-west-1'), 'diskType': ('SSD',)}
    assert opts.metadata_matches({'region': 'us-west-1', 'diskType': 'SSD'})
    assert opts.metadata_matches({'region': 'us-east-1', 'diskType': 'SSD', 'extra': 'x'})
    assert not opts.metadata_matches({'region': 'us-east-1'})
    assert not opts.metadata_matches({'region': 'eu', 'diskType': 'SSD'})
    assert not opts.metadata_matches({})


def test_metadata_bad_pairs_are_warned_and_ignored():
    opts = U.fleet_options('[X-Fleet]\nMachineMetadata=region\nMachineMetadata=a=b=c\n'
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
    assert U.fleet_options(text).is_global is expected


def test_global_non_boolean_warns():
    opts = U.fleet_options('[X-Fleet]\nGlobal=maybe\n')
    assert opts.is_global is False
    assert any('not a boolean' in w for w in opts.warnings)


def test_unknown_keys_are_warnings():
    opts = U.fleet_options('[X-Fleet]\nMachineOf=a.service\nMachineIDs=oops\nPriority=5\n')
    assert opts.unknown == ('MachineIDs', 'Priority')
    assert len(opts.warnings) == 2
    assert "'MachineIDs'" in opts.warnings[0]
    assert U.check_unit('[Service]\nExecStart=/x\n[X-Fleet]\nPriority=5\n', 'x.service') == \
        list(opts.warnings[1:])


def test_bad_conflict_glob_warns():
    opts = U.fleet_options('[X-Fleet]\nConflicts=web[.service\n')
    assert any('not a valid glob' in w for w in opts.warnings)
    assert opts.conflicts_with('web[.service') is None


def test_empty_values_ignored_with_warning():
    opts = U.fleet_options('[X-Fleet]\nMachineOf=\nReplaces=\n')
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
        U.validate_unit(text, 'probe.service')
    assert message in str(err.value)
    assert 'probe.service' in str(err.value)
    assert message in err.value.problems[0] or any(message in p for p in err.value.problems)


def test_global_false_does_not_clash():
    U.validate_unit('[Service]\nExecStart=/x\n[X-Fleet]\nGlobal=false\nMachineOf=a.service\n',
                    'b.service')


def test_several_problems_reported_together():
    with pytest.raises(U.UnitValidationError) as err:
        U.validate_unit('[Service]\nExecStart=/x\n[X-Fleet]\nMachineID=abc\nGlobal=true\nMachineOf=a.service\n',
                        'b.service')
    assert len(err.value.problems) == 3


def test_specifier_expansion_applies_to_validation():
    text = '[Service]\nExecStart=/x\n[X-Fleet]\nMachineOf=%p-peer.service\nConflicts=foo-*.service\n'
    with pytest.raises(U.UnitValidationError):
        U.validate_unit(text, 'foo.service')
    U.validate_unit(text, 'bar.service')


def test_validate_unit_checks_name_and_emptiness():
    with pytest.raises(U.UnitNameError):
        U.validate_unit(KAPPA_TEMPLATE, 'kappa-test@.mount')
    with pytest.raises(U.UnitValidationError) as err:
        U.validate_unit('# nothing\n', 'empty.service')
    assert 'no options' in str(err.value)


def test_seed_units_are_valid():
    unit, opts = U.validate_unit(KAPPA_TEMPLATE, 'kappa-test@.service')
    assert unit.hash == U.unit_hash(KAPPA_TEMPLATE)
    U.validate_unit('[Service]\nExecStart=/x\n\n[X-Fleet]\nX-ConditionMachineOf=apache.service\n',
                    'etcd-amb-apache.service')
    U.validate_unit('[Service]\nExecStart=/x\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=disk=ssd\n'
                    'Conflicts=webapp*\n', 'monitor.service')


# ---------------------------------------------------------------- globs

@pytest.mark.parametrize('pattern,name,matched', [
    ('kappa-test@*.service', 'kappa-test@1.service', True),
    ('kappa-test@*.service', 'kappa-test@.service', True),
    ('kappa-test@*.service', 'kappa-test-1.service', False),
    ('apache.service', 'apache.service', True),
    ('apache.service', 'apache2.service', False),
    ('web?.service', 'web1.service', True),
    ('web?.service', 'web12.service', False),
    ('web[0-9].service', 'web7.service', True),
    ('web[^0-9].service', 'web7.service', False),
    ('web[^0-9].service', 'webx.service', True),
    ('web[a-c]*', 'webbing', True),
    ('web\\*', 'web*', True),
    ('web\\*', 'webx', False),
    ('*', 'anything.service', True),
    ('*', 'a/b', False),
    ('*/b', 'a/b', True),
    ('a*b*c', 'axxbyyc', True),
    ('a*b*c', 'axxbyy', False),
    ('[]a]', ']', False),
    ('web[', 'web[', False),
    ('[z-a]', 'm', False),
])
def test_glob_match_follows_go_path_match(pattern, name, matched):
    assert U.glob_match(pattern, name) is matched


def test_glob_validity():
    assert U.glob_is_valid('kappa-test@*.service')
    assert not U.glob_is_valid('web[')
    assert not U.glob_is_valid('trailing\\')
    assert not U.glob_is_valid('[]')
