# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdCompareFailed,
    EtcdEvent,
    EtcdNode,
    EtcdUsageError,
    actual_of,
    conditions_hold,
    expected_of,
    parse_endpoints,
    to_text_value,
    validate_index,
    validate_ttl,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (
    dir_prefix,
    prefix_range_end,
    strip_dir_key,
    summarize_text,
)


@pytest.mark.parametrize('given, tls, expected', [
    (['http://10.0.0.1:2379'], False, ['http://10.0.0.1:2379']),
    (['10.0.0.1'], False, ['http://10.0.0.1:2379']),
    (['10.0.0.1:4001'], True, ['https://10.0.0.1:4001']),
    (['https://a:1,https://b:2', 'https://a:1'], False, ['https://a:1', 'https://b:2']),
    ('http://x:1, http://y:2', False, ['http://x:1', 'http://y:2']),
    (['http://[::1]:2379/'], False, ['http://[::1]:2379']),
    (['HTTP://Host:1'], False, ['http://host:1']),
])
def test_parse_endpoints(given, tls, expected):
    assert parse_endpoints(given, tls=tls, environ={}) == expected


def test_parse_endpoints_env_and_default():
    assert parse_endpoints(None, environ={'ETCDCTL_ENDPOINTS': 'http://e1:1,http://e2:2'}) == \
        ['http://e1:1', 'http://e2:2']
    assert parse_endpoints([], environ={'ETCDCTL_ENDPOINTS': ' '}) == ['http://127.0.0.1:2379']
    # an explicit list wins over the environment
    assert parse_endpoints(['http://a:1'], environ={'ETCDCTL_ENDPOINTS': 'http://e:1'}) == ['http://a:1']


@pytest.mark.parametrize('bad, fragment', [
    (['ftp://a:1'], 'scheme must be http or https'),
    (['http://a:1/v2/keys'], 'without a path'),
    (['http://a:notaport'], 'not a valid URL'),
    (['http://:1'], 'no host'),
    ([42], 'must be strings'),
])
def test_parse_endpoints_rejects(bad, fragment):
    with pytest.raises(EtcdUsageError) as info:
        parse_endpoints(bad, environ={})
    assert fragment in str(info.value)


def test_tls_options_with_a_plain_http_endpoint_are_refused():
    with pytest.raises(EtcdUsageError) as info:
        parse_endpoints(['https://a:1', 'http://b:2'], tls=True, environ={})
    assert "'http://b:2' is plain http" in str(info.value)
    with pytest.raises(EtcdUsageError):
        parse_endpoints(None, tls=True, environ={'ETCDCTL_ENDPOINTS': 'http://e:1'})


@pytest.mark.parametrize('value, expected', [(1, 1), ('30', 30), (5.0, 5), (None, None), (' 7 ', 7)])
def test_validate_ttl_accepts(value, expected):
    assert validate_ttl(value) == expected


@pytest.mark.parametrize('value', [0, -1, 'soon', 1.5, True, '', [], '0'])
def test_validate_ttl_rejects(value):
    with pytest.raises(EtcdUsageError) as info:
        validate_ttl(value)
    assert 'ttl must be a positive whole number of seconds' in str(info.value)
    assert repr(value) in str(info.value)


def test_validate_index():
    assert validate_index(None) is None
    assert validate_index('12') == 12
    for bad in (0, -3, 'x', True, 2.5):
        with pytest.raises(EtcdUsageError):
            validate_index(bad)


def test_to_text_value():
    assert to_text_value('a') == 'a'
    assert to_text_value(3) == '3'
    assert to_text_value(2.5) == '2.5'
    assert to_text_value(b'\xc3\xa9') == u'\xe9'
    for bad in (None, True, {'a': 1}, [1]):
        with pytest.raises(EtcdUsageError):
            to_text_value(bad, 'value of /k')


def test_prefix_helpers():
    assert dir_prefix('/a') == '/a/'
    assert dir_prefix('/a/') == '/a/'
    assert dir_prefix('/') == '/'
    assert strip_dir_key('/a/') == '/a'
    assert strip_dir_key('/') == '/'
    assert prefix_range_end(b'/a/') == b'/a0'
    assert prefix_range_end(b'a\xff') == b'b'
    assert prefix_range_end(b'\xff\xff') == b'\0'


def tree():
    return EtcdNode('/a', dir=True, children=[
        EtcdNode('/a/x', '1', index=3),
        EtcdNode('/a/d', dir=True, children=[EtcdNode('/a/d/y', '2', index=4)]),
    ])


def test_node_walk_flatten_and_dict():
    node = tree()
    assert [n.key for n in node.walk()] == ['/a', '/a/x', '/a/d', '/a/d/y']
    assert [n.key for n in node.leaves()] == ['/a/x', '/a/d/y']
    assert node.flatten() == {'/a/x': '1', '/a/d/y': '2'}
    data = node.to_dict()
    assert data['children'][1]['children'][0] == {
        'key': '/a/d/y', 'value': '2', 'dir': False, 'index': 4, 'created_index': None, 'ttl': None,
        'expiration': None, 'lease': None}
    assert node == tree()
    assert node != EtcdNode('/a', dir=True)


def test_event_properties():
    event = EtcdEvent('update', '/k', EtcdNode('/k', 'new', index=9), EtcdNode('/k', 'old', index=8), index=9,
                      raw_action='compareAndSwap')
    assert (event.value, event.prev_value, event.is_delete) == ('new', 'old', False)
    data = event.to_dict()
    assert data['raw_action'] == 'compareAndSwap' and data['index'] == 9 and data['dir'] is False
    gone = EtcdEvent('expire', '/k', None, EtcdNode('/k', 'old'), index=10)
    assert gone.is_delete and gone.value is None and gone.to_dict()['node'] is None


def test_conditions_and_compare_message():
    node = EtcdNode('/k', 'blue', index=7)
    assert conditions_hold(node, prev_value='blue', prev_index=7, prev_exist=True)
    assert not conditions_hold(node, prev_value='green')
    assert not conditions_hold(node, prev_index=6)
    assert not conditions_hold(node, prev_exist=False)
    assert not conditions_hold(None, prev_exist=True)
    assert not conditions_hold(None, prev_value='x')
    assert conditions_hold(None, prev_exist=False)
    assert not conditions_hold(EtcdNode('/k', dir=True), prev_value='x')
    exc = EtcdCompareFailed('/k', expected_of(prev_value='green'), actual_of(node))
    assert str(exc) == "compare failed for key /k: expected value 'green'; actual value 'blue', index 7"
    assert exc.expected == {'value': 'green'} and exc.actual == {'exists': True, 'value': 'blue', 'index': 7}
    missing = EtcdCompareFailed('/k', expected_of(prev_exist=True), actual_of(None))
    assert str(missing) == 'compare failed for key /k: expected key present; actual key absent'


def test_summarize_text():
    assert summarize_text('<html><body><h1>Error</h1>\n <p>Not   found</p></body></html>') == 'Error Not found'
    long_text = 'x' * 500
    assert len(summarize_text(long_text)) == 160 and summarize_text(long_text).endswith('...')
    assert summarize_text(None) == ''
