# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service-key format: keys, registrator ids, values."""

from __future__ import annotations

import json

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import (
    BAD_ADDRESS,
    BAD_JSON,
    BAD_NAME,
    BAD_PORT,
    OUTSIDE_PREFIX,
    WRONG_DEPTH,
    Backend,
    ServiceDataError,
    ServiceId,
    ServiceKey,
    check_segment,
    check_service_name,
    encode_value,
    normalize_prefix,
    owned_keys,
    parse_entry,
    parse_key,
    parse_service_id,
    parse_value,
    service_dir,
    service_id,
    service_key,
)
from hostile_names import GOOD_IDS, GOOD_NAMES, HOSTILE


# ---------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------

class TestKeys:
    def test_default_layout(self):
        assert service_key('centos', 'core-01:kappa-test-1:8000') == \
            '/services/centos/core-01:kappa-test-1:8000'

    @pytest.mark.parametrize('prefix, expected', [
        ('/services', '/services'),
        ('services', '/services'),
        ('/services/', '/services'),
        ('/a//b/', '/a/b'),
        ('/', ''),
        (None, '/services'),
    ])
    def test_normalize_prefix(self, prefix, expected):
        assert normalize_prefix(prefix) == expected

    @pytest.mark.parametrize('prefix', ['/my services', '/a/../b', 42])
    def test_bad_prefix(self, prefix):
        with pytest.raises(ValueError):
            normalize_prefix(prefix)

    def test_custom_and_root_prefix(self):
        assert service_key('db', 'x', prefix='/cluster/svc/') == '/cluster/svc/db/x'
        assert service_key('db', 'x', prefix='/') == '/db/x'
        assert service_dir('db', prefix='/cluster') == '/cluster/db'

    @pytest.mark.parametrize('name', ['', 'a/b', 'with space', 'tab\there', '..', None])
    def test_key_rejects_bad_segment(self, name):
        with pytest.raises(ServiceDataError) as err:
            service_key(name, 'id')
        assert err.value.code == BAD_NAME
        with pytest.raises(ServiceDataError):
            service_key('web', name)

    def test_parse_key_roundtrip(self):
        key = service_key('redis-A', 'redis.service', prefix='/services')
        assert parse_key(key) == ServiceKey('redis-A', 'redis.service')
        assert parse_key('/svc/web/a:b:1', prefix='/svc/') == ('web', 'a:b:1')
        assert parse_key('/web/id', prefix='/') == ('web', 'id')

    @pytest.mark.parametrize('key', [
        '/services/web',
        '/services/web/host/extra',
        '/services//id',
        '/services/web/',
        '/services',
        '/services/',
    ])
    def test_parse_key_wrong_depth(self, key):
        with pytest.raises(ServiceDataError) as err:
            parse_key(key)
        assert err.value.code == WRONG_DEPTH
        assert err.value.key == key
        assert repr(key) in str(err.value)

    @pytest.mark.parametrize('key', ['/other/web/id', '/services-old/web/id', 'services/web/id', None])
    def test_parse_key_outside_prefix(self, key):
        with pytest.raises(ServiceDataError) as err:
            parse_key(key)
        assert err.value.code == OUTSIDE_PREFIX


class TestServiceIds:
    def test_build(self):
        assert service_id('core-01', 'kappa-test-1', 8000) == 'core-01:kappa-test-1:8000'
        assert service_id('core-01', '/dns', 53, 'udp') == 'core-01:dns:53:udp'
        assert service_id('core-01', 'dns', 53, 'UDP') == 'core-01:dns:53:udp'
        assert service_id('n', 'app', 132, 'sctp') == 'n:app:132:sctp'

    def test_build_rejects_bad_port(self):
        with pytest.raises(ServiceDataError):
            service_id('n', 'app', 0)

    @pytest.mark.parametrize('text, expected', [
        ('core-01:kappa-test-1:8000', ('core-01', 'kappa-test-1', 8000, 'tcp')),
        ('core-01:dns:53:udp', ('core-01', 'dns', 53, 'udp')),
        ('node.example.com:my_app.v2:65535', ('node.example.com', 'my_app.v2', 65535, 'tcp')),
        ('h:c1:80', ('h', 'c1', 80, 'tcp')),
        ('h:c:80', ('h', 'c', 80, 'tcp')),
        ('core-01:1:2', ('core-01', '1', 2, 'tcp')),
    ])
    def test_parse(self, text, expected):
        assert parse_service_id(text) == ServiceId(*expected)

    @pytest.mark.parametrize('text', [
        'redis.service', 'core-01:web', 'core-01:web:http', 'core-01:web:70000',
        'core-01:web:0', ':web:80', 'core-01:-web:80', 'core-01:web:80:tcp6', None,
    ])
    def test_parse_not_registrator(self, text):
        assert parse_service_id(text) is None

    def test_build_parse_roundtrip(self):
        for proto in ('tcp', 'udp'):
            text = service_id('core-02', 'kappa-test-3', 8000, proto)
            assert parse_service_id(text) == ('core-02', 'kappa-test-3', 8000, proto)

    def test_owned_keys(self):
        keys = [
            '/services/centos/core-01:kappa-test-1:8000',
            '/services/centos/core-02:kappa-test-3:8000',
            '/services/dns/core-01:dns:53:udp',
            '/services/redis-A/redis.service',          # announcer key, not provably ours
            '/services/custom/my-fixed-id',             # SERVICE_ID override
            '/services/deep/core-01:x:1/extra',         # wrong depth
            '/elsewhere/web/core-01:web:80',            # outside prefix
            '/services/centos/core-011:kappa-test-9:8000',  # a host whose name extends ours
        ]
        assert owned_keys(keys, 'core-01') == [
            '/services/centos/core-01:kappa-test-1:8000',
            '/services/dns/core-01:dns:53:udp',
        ]
        pairs = [(k, '1.2.3.4:5') for k in keys]
        assert owned_keys(pairs, 'core-02') == ['/services/centos/core-02:kappa-test-3:8000']
        assert owned_keys(keys, 'core-09') == []


# ---------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------

class TestValues:
    @pytest.mark.parametrize('value, expected', [
        ('172.17.8.101:32771', ('172.17.8.101', 32771)),
        (' 10.0.0.1:80\n', ('10.0.0.1', 80)),
        ('[fd00::1]:8080', ('fd00::1', 8080)),
        ('[FD00:0:0::1]:8080', ('fd00::1', 8080)),
        (b'10.0.0.2:443', ('10.0.0.2', 443)),
        ('{"host": "10.132.181.182", "port": 49155}', ('10.132.181.182', 49155)),
        ('{ "port": 49155, "host": "10.132.181.182" }', ('10.132.181.182', 49155)),
        ('{"host": "10.0.0.3", "port": "6379", "extra": true}', ('10.0.0.3', 6379)),
        ('{"host": "fd00::2", "port": 1}', ('fd00::2', 1)),
        ('1.2.3.4:65535', ('1.2.3.4', 65535)),
    ])
    def test_parse_good(self, value, expected):
        assert parse_value(value) == Backend(*expected)

    @pytest.mark.parametrize('value, code', [
        ('', BAD_ADDRESS),
        ('   ', BAD_ADDRESS),
        ('garbage', BAD_ADDRESS),
        ('not an address:80', BAD_ADDRESS),
        ('10.0.0.256:80', BAD_ADDRESS),
        ('0.0.0.0:80', BAD_ADDRESS),
        ('[::]:80', BAD_ADDRESS),
        ('fd00::1:80', BAD_ADDRESS),
        ('[fd00::1:80', BAD_ADDRESS),
        ('[nothex]:80', BAD_ADDRESS),
        (':80', BAD_ADDRESS),
        ('localhost:1111', BAD_ADDRESS),
        (b'\xff\xfe:80', BAD_ADDRESS),
        (12345, BAD_ADDRESS),
        ('10.0.0.1:', BAD_PORT),
        ('10.0.0.1:http', BAD_PORT),
        ('10.0.0.1:0', BAD_PORT),
        ('10.0.0.1:65536', BAD_PORT),
        ('10.0.0.1:-5', BAD_PORT),
        ('10.0.0.1:８０', BAD_PORT),
        ('{"host": "10.0.0.1", "port": 70000}', BAD_PORT),
        ('{"host": "10.0.0.1", "port": true}', BAD_PORT),
        ('{"host": "10.0.0.1", "port": 80.5}', BAD_PORT),
        ('{"host": "10.0.0.1", "port": null}', BAD_PORT),
        ('{"host": "nope nope", "port": 80}', BAD_ADDRESS),
        ('{"host": 10, "port": 80}', BAD_ADDRESS),
        ('{"host": "10.0.0.1"', BAD_JSON),
        ('{"port": 80}', BAD_JSON),
        ('{}', BAD_JSON),
        ('{"host": "10.0.0.1", "port": 80} trailing', BAD_JSON),
    ])
    def test_parse_bad(self, value, code):
        with pytest.raises(ServiceDataError) as err:
            parse_value(value)
        assert err.value.code == code, str(err.value)
        assert err.value.value == value
        assert isinstance(err.value, ValueError)

    def test_hostnames_only_when_allowed(self):
        assert parse_value('localhost:1111', allow_hostnames=True) == Backend('localhost', 1111)
        assert parse_value('{"host": "db.example.", "port": 5432}', allow_hostnames=True) == \
            Backend('db.example', 5432)
        for bad in ('-bad-:80', 'a..b:80', '999:80', 'x' * 64 + ':80'):
            with pytest.raises(ServiceDataError) as err:
                parse_value(bad, allow_hostnames=True)
            assert err.value.code == BAD_ADDRESS

    def test_error_message_names_key_value_and_problem(self):
        with pytest.raises(ServiceDataError) as err:
            parse_entry('/services/web/n1:web:80', '10.0.0.1:99999')
        text = str(err.value)
        assert "'/services/web/n1:web:80'" in text
        assert "'10.0.0.1:99999'" in text
        assert '99999' in text and 'range' in text
        assert err.value.code == BAD_PORT

    def test_long_values_are_shortened_in_messages(self):
        with pytest.raises(ServiceDataError) as err:
            parse_value('x' * 5000)
        assert len(str(err.value)) < 300

    @pytest.mark.parametrize('host, port, plain, as_json', [
        ('10.0.0.1', 80, '10.0.0.1:80', {'host': '10.0.0.1', 'port': 80}),
        ('fd00:0::7', '8080', '[fd00::7]:8080', {'host': 'fd00::7', 'port': 8080}),
    ])
    def test_encode(self, host, port, plain, as_json):
        assert encode_value(host, port) == plain
        assert encode_value(host, port, style='plain') == plain
        encoded = encode_value(host, port, style='json')
        assert json.loads(encoded) == as_json
        # both forms read back to the same backend
        assert parse_value(plain) == parse_value(encoded) == Backend(as_json['host'], as_json['port'])

    def test_encode_rejects_bad_input(self):
        with pytest.raises(ValueError):
            encode_value('10.0.0.1', 80, style='xml')
        with pytest.raises(ServiceDataError) as err:
            encode_value('10.0.0.1', 0)
        assert err.value.code == BAD_PORT
        with pytest.raises(ServiceDataError) as err:
            encode_value('0.0.0.0', 80)
        assert err.value.code == BAD_ADDRESS
        with pytest.raises(ServiceDataError):
            encode_value('db.local', 80)
        assert encode_value('db.local', 80, allow_hostnames=True) == 'db.local:80'


# ---------------------------------------------------------------------------
# names: the one definition
# ---------------------------------------------------------------------------

class TestNames:
    @pytest.mark.parametrize('name', GOOD_NAMES)
    def test_good_service_names(self, name):
        assert check_service_name(name) == name
        assert parse_key(service_key(name, 'h:c:80')) == (name, 'h:c:80')

    @pytest.mark.parametrize('sid', GOOD_IDS + GOOD_NAMES)
    def test_good_instance_ids(self, sid):
        assert check_segment('service id', sid) == sid
        assert parse_key('/services/web/%s' % sid) == ('web', sid)

    @pytest.mark.parametrize('what', sorted(HOSTILE))
    def test_hostile_service_name_refused(self, what):
        name = HOSTILE[what]
        with pytest.raises(ServiceDataError) as err:
            check_service_name(name)
        assert err.value.code == BAD_NAME
        with pytest.raises(ServiceDataError):
            service_key(name, 'id')

    @pytest.mark.parametrize('what', sorted(HOSTILE))
    def test_hostile_instance_id_refused(self, what):
        with pytest.raises(ServiceDataError) as err:
            check_segment('service id', HOSTILE[what])
        assert err.value.code == BAD_NAME

    @pytest.mark.parametrize('what', sorted(HOSTILE))
    def test_parse_key_skips_hostile_names(self, what):
        name = HOSTILE[what]
        for key in ('/services/%s/h:c:80' % name, '/services/web/%s' % name):
            with pytest.raises(ServiceDataError) as err:
                parse_key(key)
            assert err.value.key == key
            assert err.value.code in (BAD_NAME, WRONG_DEPTH)

    def test_service_names_hold_no_colon_or_at(self):
        for name in ('a:b', 'a@b', '-lead', '_lead', '.hidden'):
            with pytest.raises(ServiceDataError):
                check_service_name(name)

    def test_message_names_the_value_readably(self):
        with pytest.raises(ServiceDataError) as err:
            parse_key('/services/%s/h:c:80' % HOSTILE['newline'])
        text = str(err.value)
        assert '\n' not in text and '\\n' in text
        assert 'web-1' in text

    def test_message_shortens_a_long_name(self):
        key = '/services/%s/h:c:80' % HOSTILE['long']
        with pytest.raises(ServiceDataError) as err:
            parse_key(key)
        text = str(err.value)
        assert len(text) < 600, text
        assert '(%d characters)' % len(HOSTILE['long']) in text, text

    def test_length_limits(self):
        assert check_service_name('a' * 128)
        with pytest.raises(ServiceDataError):
            check_service_name('a' * 129)
        assert check_segment('service id', 'a' * 255)
        with pytest.raises(ServiceDataError):
            check_segment('service id', 'a' * 256)
