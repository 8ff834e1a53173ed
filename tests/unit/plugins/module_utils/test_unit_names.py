# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils import units as U
from ansible_collections.etcdfleet.cluster.plugins.module_utils import unit_names as N


# ---------------------------------------------------------------- names

@pytest.mark.parametrize('name', [
    'hello.service', 'kappa-test@.service', 'kappa-test@1.service', 'a:b_c.d-e.socket',
    'web@my.instance.timer', 'dev-sda1.device', 'x\\x2dy.mount', 'x' * 248 + '.service',
])
def test_valid_unit_names(name):
    assert N.validate_unit_name(name) == name
    assert N.is_valid_unit_name(name)


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
        N.validate_unit_name(name)
    assert reason in str(err.value)
    assert repr(name) in str(err.value)
    assert not N.is_valid_unit_name(name)


def test_parse_unit_name_parts():
    plain = N.parse_unit_name('hello.service')
    assert (plain.name, plain.prefix, plain.template, plain.instance) == ('hello', 'hello', '', '')
    assert not plain.is_template and not plain.is_instance
    tmpl = N.parse_unit_name('kappa-test@.service')
    assert tmpl.is_template and not tmpl.is_instance and tmpl.template == 'kappa-test@.service'
    inst = N.parse_unit_name('kappa-test@3.service')
    assert inst.is_instance and not inst.is_template
    assert (inst.name, inst.prefix, inst.template, inst.instance, inst.unit_type) == \
        ('kappa-test@3', 'kappa-test', 'kappa-test@.service', '3', 'service')
    nested = N.parse_unit_name('a@b@c.socket')
    assert (nested.prefix, nested.instance, nested.template) == ('a', 'b@c', 'a@.socket')
    assert N.parse_unit_name('nodot') is None


def test_instances_and_templates():
    assert N.instance_name('kappa-test@.service', '3') == 'kappa-test@3.service'
    assert N.template_name('kappa-test@3.service') == 'kappa-test@.service'
    assert N.template_name('kappa-test@.service') is None
    assert N.template_name('hello.service') is None
    with pytest.raises(U.UnitNameError):
        N.instance_name('hello.service', '1')
    with pytest.raises(U.UnitNameError):
        N.instance_name('kappa-test@.service', '')
    with pytest.raises(U.UnitNameError):
        N.instance_name('kappa-test@.service', 'a b')


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
    assert N.mangle_unit_name(arg) == name


# ---------------------------------------------------------------- specifiers

def test_expand_specifiers():
    assert N.expand_specifiers('%n|%N|%p|%i|%m|%H', 'apache@2.service') == \
        'apache@2.service|apache@2|apache|2|%m|%H'
    assert N.expand_specifiers('%p.socket', 'foo.service') == 'foo.socket'
    assert N.expand_specifiers('%i', 'foo.service') == ''
    assert N.expand_specifiers('%n', None) == '%n'


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
    assert N.glob_match(pattern, name) is matched


def test_glob_validity():
    assert N.glob_is_valid('kappa-test@*.service')
    assert not N.glob_is_valid('web[')
    assert not N.glob_is_valid('trailing\\')
    assert not N.glob_is_valid('[]')
