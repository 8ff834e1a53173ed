# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils import units as U

from seed_units import KAPPA_CAT, KAPPA_FLEET_HASH, KAPPA_TEMPLATE


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


# ---------------------------------------------------------------- [X-Fleet] values

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
