# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils import services as svc
from ansible_collections.etcdfleet.cluster.plugins.module_utils.services import (
    Backend,
    RegistratorOptions,
    ServiceDataError,
)

NODE = '10.10.0.11'
OPTS = RegistratorOptions(hostname='core-01', advertise_ip=NODE)


def container(name='web1', image='nginx:1.25', ports=None, labels=None, env=None, **extra):
    desc = {
        'name': name,
        'image': image,
        'labels': labels or {},
        'env': env or [],
        'ports': ports if ports is not None else [
            {'port': 80, 'proto': 'tcp', 'host_ip': '0.0.0.0', 'host_port': 32768}],
        'ip': '172.17.0.5',
        'network_mode': 'bridge',
        'health': None,
        'running': True,
    }
    desc.update(extra)
    return desc


def published(port, host_port, proto='tcp', host_ip='0.0.0.0'):
    return {'port': port, 'proto': proto, 'host_ip': host_ip, 'host_port': host_port}


def unpublished(port, proto='tcp'):
    return {'port': port, 'proto': proto, 'host_ip': None, 'host_port': None}


def names(result):
    return [s.name for s in result.services]


def reasons(result):
    return [s.reason for s in result.skipped]


# ---------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------

class TestKeys:
    def test_default_layout(self):
        assert svc.service_key('centos', 'core-01:kappa-test-1:8000') == \
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
        assert svc.normalize_prefix(prefix) == expected

    @pytest.mark.parametrize('prefix', ['/my services', '/a/../b', 42])
    def test_bad_prefix(self, prefix):
        with pytest.raises(ValueError):
            svc.normalize_prefix(prefix)

    def test_custom_and_root_prefix(self):
        assert svc.service_key('db', 'x', prefix='/cluster/svc/') == '/cluster/svc/db/x'
        assert svc.service_key('db', 'x', prefix='/') == '/db/x'
        assert svc.service_dir('db', prefix='/cluster') == '/cluster/db'

    @pytest.mark.parametrize('name', ['', 'a/b', 'with space', 'tab\there', '..', None])
    def test_key_rejects_bad_segment(self, name):
        with pytest.raises(ServiceDataError) as err:
            svc.service_key(name, 'id')
        assert err.value.code == svc.BAD_NAME
        with pytest.raises(ServiceDataError):
            svc.service_key('web', name)

    def test_parse_key_roundtrip(self):
        key = svc.service_key('redis-A', 'redis.service', prefix='/services')
        assert svc.parse_key(key) == svc.ServiceKey('redis-A', 'redis.service')
        assert svc.parse_key('/svc/web/a:b:1', prefix='/svc/') == ('web', 'a:b:1')
        assert svc.parse_key('/web/id', prefix='/') == ('web', 'id')

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
            svc.parse_key(key)
        assert err.value.code == svc.WRONG_DEPTH
        assert err.value.key == key
        assert repr(key) in str(err.value)

    @pytest.mark.parametrize('key', ['/other/web/id', '/services-old/web/id', 'services/web/id', None])
    def test_parse_key_outside_prefix(self, key):
        with pytest.raises(ServiceDataError) as err:
            svc.parse_key(key)
        assert err.value.code == svc.OUTSIDE_PREFIX


class TestServiceIds:
    def test_build(self):
        assert svc.service_id('core-01', 'kappa-test-1', 8000) == 'core-01:kappa-test-1:8000'
        assert svc.service_id('core-01', '/dns', 53, 'udp') == 'core-01:dns:53:udp'
        assert svc.service_id('core-01', 'dns', 53, 'UDP') == 'core-01:dns:53:udp'
        assert svc.service_id('n', 'app', 132, 'sctp') == 'n:app:132:sctp'

    def test_build_rejects_bad_port(self):
        with pytest.raises(ServiceDataError):
            svc.service_id('n', 'app', 0)

    @pytest.mark.parametrize('text, expected', [
        ('core-01:kappa-test-1:8000', ('core-01', 'kappa-test-1', 8000, 'tcp')),
        ('core-01:dns:53:udp', ('core-01', 'dns', 53, 'udp')),
        ('node.example.com:my_app.v2:65535', ('node.example.com', 'my_app.v2', 65535, 'tcp')),
        ('h:c1:80', ('h', 'c1', 80, 'tcp')),
        ('h:c:80', ('h', 'c', 80, 'tcp')),
        ('core-01:1:2', ('core-01', '1', 2, 'tcp')),
    ])
    def test_parse(self, text, expected):
        assert svc.parse_service_id(text) == svc.ServiceId(*expected)

    @pytest.mark.parametrize('text', [
        'redis.service', 'core-01:web', 'core-01:web:http', 'core-01:web:70000',
        'core-01:web:0', ':web:80', 'core-01:-web:80', 'core-01:web:80:tcp6', None,
    ])
    def test_parse_not_registrator(self, text):
        assert svc.parse_service_id(text) is None

    def test_build_parse_roundtrip(self):
        for proto in ('tcp', 'udp'):
            text = svc.service_id('core-02', 'kappa-test-3', 8000, proto)
            assert svc.parse_service_id(text) == ('core-02', 'kappa-test-3', 8000, proto)

    def test_every_generated_id_is_recognized_as_owned(self):
        descs = [
            container(name='a', ports=[published(80, 1), published(53, 2, 'udp')]),
            container(name='kappa-test-1.v2_x', ports=[published(8000, 3)]),
            container(name='9', ports=[published(65535, 4, 'sctp')]),
        ]
        for hostname in ('core-01', 'node.example.com', 'n'):
            opts = OPTS._replace(hostname=hostname)
            for desc in descs:
                for service in svc.container_services(desc, opts).services:
                    parsed = svc.parse_service_id(service.id)
                    assert parsed == (hostname, desc['name'], service.exposed_port, service.proto)
                    assert svc.owned_keys([service.key()], hostname) == [service.key()]
                    assert svc.owned_keys([service.key()], hostname + 'x') == []

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
        assert svc.owned_keys(keys, 'core-01') == [
            '/services/centos/core-01:kappa-test-1:8000',
            '/services/dns/core-01:dns:53:udp',
        ]
        pairs = [(k, '1.2.3.4:5') for k in keys]
        assert svc.owned_keys(pairs, 'core-02') == ['/services/centos/core-02:kappa-test-3:8000']
        assert svc.owned_keys(keys, 'core-09') == []


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
        assert svc.parse_value(value) == Backend(*expected)

    @pytest.mark.parametrize('value, code', [
        ('', svc.BAD_ADDRESS),
        ('   ', svc.BAD_ADDRESS),
        ('garbage', svc.BAD_ADDRESS),
        ('not an address:80', svc.BAD_ADDRESS),
        ('10.0.0.256:80', svc.BAD_ADDRESS),
        ('0.0.0.0:80', svc.BAD_ADDRESS),
        ('[::]:80', svc.BAD_ADDRESS),
        ('fd00::1:80', svc.BAD_ADDRESS),
        ('[fd00::1:80', svc.BAD_ADDRESS),
        ('[nothex]:80', svc.BAD_ADDRESS),
        (':80', svc.BAD_ADDRESS),
        ('localhost:1111', svc.BAD_ADDRESS),
        (b'\xff\xfe:80', svc.BAD_ADDRESS),
        (12345, svc.BAD_ADDRESS),
        ('10.0.0.1:', svc.BAD_PORT),
        ('10.0.0.1:http', svc.BAD_PORT),
        ('10.0.0.1:0', svc.BAD_PORT),
        ('10.0.0.1:65536', svc.BAD_PORT),
        ('10.0.0.1:-5', svc.BAD_PORT),
        ('10.0.0.1:８０', svc.BAD_PORT),
        ('{"host": "10.0.0.1", "port": 70000}', svc.BAD_PORT),
        ('{"host": "10.0.0.1", "port": true}', svc.BAD_PORT),
        ('{"host": "10.0.0.1", "port": 80.5}', svc.BAD_PORT),
        ('{"host": "10.0.0.1", "port": null}', svc.BAD_PORT),
        ('{"host": "nope nope", "port": 80}', svc.BAD_ADDRESS),
        ('{"host": 10, "port": 80}', svc.BAD_ADDRESS),
        ('{"host": "10.0.0.1"', svc.BAD_JSON),
        ('{"port": 80}', svc.BAD_JSON),
        ('{}', svc.BAD_JSON),
        ('{"host": "10.0.0.1", "port": 80} trailing', svc.BAD_JSON),
    ])
    def test_parse_bad(self, value, code):
        with pytest.raises(ServiceDataError) as err:
            svc.parse_value(value)
        assert err.value.code == code, str(err.value)
        assert err.value.value == value
        assert isinstance(err.value, ValueError)

    def test_hostnames_only_when_allowed(self):
        assert svc.parse_value('localhost:1111', allow_hostnames=True) == Backend('localhost', 1111)
        assert svc.parse_value('{"host": "db.example.", "port": 5432}', allow_hostnames=True) == \
            Backend('db.example', 5432)
        for bad in ('-bad-:80', 'a..b:80', '999:80', 'x' * 64 + ':80'):
            with pytest.raises(ServiceDataError) as err:
                svc.parse_value(bad, allow_hostnames=True)
            assert err.value.code == svc.BAD_ADDRESS

    def test_error_message_names_key_value_and_problem(self):
        with pytest.raises(ServiceDataError) as err:
            svc.parse_entry('/services/web/n1:web:80', '10.0.0.1:99999')
        text = str(err.value)
        assert "'/services/web/n1:web:80'" in text
        assert "'10.0.0.1:99999'" in text
        assert '99999' in text and 'range' in text
        assert err.value.code == svc.BAD_PORT

    def test_long_values_are_shortened_in_messages(self):
        with pytest.raises(ServiceDataError) as err:
            svc.parse_value('x' * 5000)
        assert len(str(err.value)) < 300

    @pytest.mark.parametrize('host, port, plain, as_json', [
        ('10.0.0.1', 80, '10.0.0.1:80', {'host': '10.0.0.1', 'port': 80}),
        ('fd00:0::7', '8080', '[fd00::7]:8080', {'host': 'fd00::7', 'port': 8080}),
    ])
    def test_encode(self, host, port, plain, as_json):
        assert svc.encode_value(host, port) == plain
        assert svc.encode_value(host, port, style='plain') == plain
        encoded = svc.encode_value(host, port, style='json')
        assert json.loads(encoded) == as_json
        # both forms read back to the same backend
        assert svc.parse_value(plain) == svc.parse_value(encoded) == Backend(as_json['host'], as_json['port'])

    def test_encode_rejects_bad_input(self):
        with pytest.raises(ValueError):
            svc.encode_value('10.0.0.1', 80, style='xml')
        with pytest.raises(ServiceDataError) as err:
            svc.encode_value('10.0.0.1', 0)
        assert err.value.code == svc.BAD_PORT
        with pytest.raises(ServiceDataError) as err:
            svc.encode_value('0.0.0.0', 80)
        assert err.value.code == svc.BAD_ADDRESS
        with pytest.raises(ServiceDataError):
            svc.encode_value('db.local', 80)
        assert svc.encode_value('db.local', 80, allow_hostnames=True) == 'db.local:80'


# ---------------------------------------------------------------------------
# discover: catalog
# ---------------------------------------------------------------------------

SEED_PAIRS = [
    ('/services', None),
    ('/services/centos', None),
    ('/services/centos/core-02:kappa-test-3:8000', '172.17.8.102:32771'),
    ('/services/centos/core-01:kappa-test-1:8000', '172.17.8.101:32771'),
    ('/services/centos/core-03:kappa-test-2:8000', '172.17.8.103:32771'),
    ('/services/docker-discover-8000', None),
    ('/services/docker-discover-8000/core-01:docker-discover:8000', '172.17.8.101:8000'),
    ('/services/redis-A/redis.service', '{ "port": 49155, "host": "10.132.181.182" }'),
]


class TestCatalog:
    def test_seed_walkthrough(self):
        catalog = svc.build_catalog(SEED_PAIRS)
        assert catalog.warnings == []
        assert catalog.names() == ['centos', 'docker-discover-8000', 'redis-A']
        assert catalog.backends('centos') == [
            Backend('172.17.8.101', 32771), Backend('172.17.8.102', 32771), Backend('172.17.8.103', 32771)]
        assert [i.id for i in catalog.instances['centos']] == [
            'core-01:kappa-test-1:8000', 'core-02:kappa-test-3:8000', 'core-03:kappa-test-2:8000']
        assert catalog.backends('redis-A') == [Backend('10.132.181.182', 49155)]
        assert catalog.backends('absent') == []
        assert catalog.as_dict()['redis-A'] == [
            {'id': 'redis.service', 'host': '10.132.181.182', 'port': 49155}]

    def test_order_does_not_depend_on_input_order(self):
        forward = svc.build_catalog(SEED_PAIRS)
        backward = svc.build_catalog(list(reversed(SEED_PAIRS)))
        assert forward == backward
        assert list(forward.as_dict().items()) == list(backward.as_dict().items())

    def test_garbage_is_skipped_with_warnings(self):
        pairs = SEED_PAIRS + [
            ('/services/centos/core-04:evil:8000', 'not an address'),
            ('/services/centos/core-05:evil:8000', '10.0.0.5:0'),
            ('/services/centos/core-06:evil:8000', '{"host": "10.0.0.6"'),
            ('/services/centos/core-07:evil:8000/deeper', '10.0.0.7:80'),
            ('/services/lonely', '10.0.0.8:80'),
            ('/services', '10.0.0.9:80'),
            ('/services/centos/core-10:evil:8000', ''),
        ]
        catalog = svc.build_catalog(pairs)
        # good data is untouched
        assert catalog.backends('centos') == svc.build_catalog(SEED_PAIRS).backends('centos')
        assert 'lonely' not in catalog.instances
        codes = {w.key: w.code for w in catalog.warnings}
        assert codes == {
            '/services/centos/core-04:evil:8000': svc.BAD_ADDRESS,
            '/services/centos/core-05:evil:8000': svc.BAD_PORT,
            '/services/centos/core-06:evil:8000': svc.BAD_JSON,
            '/services/centos/core-07:evil:8000/deeper': svc.WRONG_DEPTH,
            '/services/lonely': svc.WRONG_DEPTH,
            '/services': svc.WRONG_DEPTH,
            '/services/centos/core-10:evil:8000': svc.BAD_ADDRESS,
        }
        for warning in catalog.warnings:
            assert warning.key in str(warning)

    def test_service_with_only_bad_entries_disappears(self):
        catalog = svc.build_catalog([('/services/web/a', 'junk'), ('/services/web/b', '1.1.1.1:0')])
        assert catalog.instances == {}
        assert len(catalog.warnings) == 2

    def test_keys_outside_prefix_and_directories_are_ignored_silently(self):
        catalog = svc.build_catalog([
            ('/services-old/web/a', '10.0.0.1:80'),
            ('/other', 'junk'),
            ('/services/web', None),
            ('/services/web/a', '10.0.0.2:80'),
        ])
        assert catalog.warnings == []
        assert catalog.names() == ['web']

    def test_duplicate_address_kept_once(self):
        catalog = svc.build_catalog([
            ('/services/web/z-announcer', '{"host": "10.0.0.1", "port": 80}'),
            ('/services/web/n1:web:80', '10.0.0.1:80'),
            ('/services/web/n2:web:80', '10.0.0.2:80'),
        ])
        assert [(i.id, i.backend) for i in catalog.instances['web']] == [
            ('n1:web:80', Backend('10.0.0.1', 80)), ('n2:web:80', Backend('10.0.0.2', 80))]

    def test_bytes_keys_and_values(self):
        catalog = svc.build_catalog([(b'/services/web/n1:web:80', b'10.0.0.1:80'),
                                     (b'/services/web/\xff', b'10.0.0.2:80')])
        assert catalog.backends('web') == [Backend('10.0.0.1', 80)]
        assert svc.owned_keys([b'/services/web/n1:web:80'], 'n1') == ['/services/web/n1:web:80']

    def test_custom_prefix(self):
        pairs = [('/cl/svc/web/a', '10.0.0.1:80'), ('/services/web/b', '10.0.0.2:80')]
        catalog = svc.build_catalog(pairs, prefix='/cl/svc/')
        assert catalog.backends('web') == [Backend('10.0.0.1', 80)]

    def test_hostnames_pass_through_option(self):
        pairs = [('/services/web/a', 'web.internal:80')]
        assert svc.build_catalog(pairs).warnings[0].code == svc.BAD_ADDRESS
        assert svc.build_catalog(pairs, allow_hostnames=True).backends('web') == [Backend('web.internal', 80)]


# ---------------------------------------------------------------------------
# discover: exposures
# ---------------------------------------------------------------------------

class TestExposures:
    def test_explicit_list(self):
        config = svc.parse_exposures([{'name': 'centos', 'port': 8000},
                                      {'name': 'api', 'port': '9000', 'mode': 'http', 'balance': 'leastconn'}])
        exposures, warnings = svc.select_exposures(config, ['centos'])
        assert warnings == []
        assert exposures == [
            svc.Exposure('centos', 8000, 'tcp', 'roundrobin', 'explicit'),
            svc.Exposure('api', 9000, 'http', 'leastconn', 'explicit'),
        ]

    def test_default_mode_and_balance_are_configurable(self):
        config = svc.parse_exposures([{'name': 'web', 'port': 80}], default_mode='http', default_balance='first')
        assert config.services[0].mode == 'http'
        assert config.services[0].balance == 'first'

    @pytest.mark.parametrize('services, fragment', [
        ([{'name': 'web'}], 'name and port are required'),
        ([{'port': 80}], 'name and port are required'),
        (['web'], 'must be a mapping'),
        ([{'name': 'web', 'port': 0}], 'out of range'),
        ([{'name': 'web', 'port': 'eighty'}], 'not a number'),
        ([{'name': 'web', 'port': 80, 'mode': 'udp'}], "mode must be one of http, tcp, got 'udp'"),
        ([{'name': 'web', 'port': 80, 'balance': 'fastest'}], "got 'fastest'"),
        ([{'name': 'a/b', 'port': 80}], "'a/b'"),
        ([{'name': 'web', 'port': 80, 'typo': 1}], 'unknown option(s) typo'),
        ([{'name': 'a', 'port': 80}, {'name': 'b', 'port': 80}], "port 80 is already used by service 'a'"),
        ([{'name': 'a', 'port': 1936}], 'port 1936 is reserved'),
    ])
    def test_explicit_list_errors(self, services, fragment):
        with pytest.raises(ValueError) as err:
            svc.parse_exposures(services, reserved_ports=[1936])
        assert fragment in str(err.value)

    def test_same_service_on_two_ports_is_allowed(self):
        config = svc.parse_exposures([{'name': 'web', 'port': 80, 'mode': 'http'}, {'name': 'web', 'port': 81}])
        assert [e.port for e in config.services] == [80, 81]

    def test_explicit_service_is_exposed_even_without_instances(self):
        config = svc.parse_exposures([{'name': 'centos', 'port': 8000}])
        exposures, _warnings = svc.select_exposures(config, [])
        assert [e.name for e in exposures] == ['centos']

    def test_glob_rule_takes_port_from_name_suffix(self):
        config = svc.parse_exposures(
            [{'name': 'centos', 'port': 8000}],
            rule={'pattern': 'app-*', 'mode': 'http'}, reserved_ports=[1936])
        found = ['app-8080', 'app-9090', 'centos', 'other-7000', 'app-x']
        exposures, warnings = svc.select_exposures(config, found)
        assert [(e.name, e.port, e.mode, e.source) for e in exposures] == [
            ('centos', 8000, 'tcp', 'explicit'),
            ('app-8080', 8080, 'http', 'rule'),
            ('app-9090', 9090, 'http', 'rule'),
        ]
        assert len(warnings) == 1 and "'app-x'" in warnings[0] and 'no port' in warnings[0]

    def test_regex_rule_with_port_group_and_base_port(self):
        config = svc.parse_exposures(rule={
            'pattern': r'shard(?P<port>[0-9]+)', 'pattern_type': 'regex', 'base_port': 7000})
        exposures, warnings = svc.select_exposures(config, ['shard1', 'shard12', 'shardX', 'xshard1'])
        assert warnings == []
        assert [(e.name, e.port) for e in exposures] == [('shard1', 7001), ('shard12', 7012)]

    def test_rule_conflicts_are_warned_and_deterministic(self):
        config = svc.parse_exposures(
            [{'name': 'centos', 'port': 8000}],
            rule={'pattern': '*-*'}, reserved_ports=[1936])
        found = ['web-8000', 'b-1936', 'a-9000', 'c-9000', 'centos-8000', 'huge-70000']
        exposures, warnings = svc.select_exposures(config, found)
        again, warnings_again = svc.select_exposures(config, list(reversed(found)))
        assert exposures == again and warnings == warnings_again
        assert [(e.name, e.port) for e in exposures] == [('centos', 8000), ('a-9000', 9000)]
        text = '\n'.join(warnings)
        assert "'b-1936'" in text and 'reserved' in text
        assert "'c-9000'" in text and "already used by 'a-9000'" in text
        assert "'web-8000'" in text and "'centos-8000'" in text
        assert "'huge-70000'" in text and 'out of range' in text

    def test_rule_does_not_duplicate_explicit_names(self):
        config = svc.parse_exposures([{'name': 'web-80', 'port': 8080}], rule={'pattern': 'web-*'})
        exposures, warnings = svc.select_exposures(config, ['web-80'])
        assert [(e.name, e.port) for e in exposures] == [('web-80', 8080)]
        assert warnings == []

    def test_rule_exclude(self):
        config = svc.parse_exposures(rule={'pattern': '*', 'exclude': ['docker-discover-1936']})
        exposures, warnings = svc.select_exposures(config, ['docker-discover-1936', 'web-81'])
        assert [e.name for e in exposures] == ['web-81'] and warnings == []

    @pytest.mark.parametrize('rule, fragment', [
        ({'pattern': ''}, 'pattern must be a non-empty string'),
        ({'pattern': '(', 'pattern_type': 'regex'}, 'not a valid regular expression'),
        ({'pattern': '*', 'pattern_type': 'sql'}, 'pattern_type must be one of'),
        ({'pattern': '*', 'base_port': -1}, 'base_port'),
        ({'pattern': '*', 'base_port': 'x'}, 'base_port'),
        ({'pattern': '*', 'exclude': 'web'}, 'exclude'),
        ({'pattern': '*', 'port': 80}, 'unknown option(s) port'),
        ('web-*', 'must be a mapping'),
    ])
    def test_rule_errors(self, rule, fragment):
        with pytest.raises(ValueError) as err:
            svc.parse_exposures(rule=rule)
        assert fragment in str(err.value)


# ---------------------------------------------------------------------------
# registrator model
# ---------------------------------------------------------------------------

class TestImageNames:
    @pytest.mark.parametrize('image, expected', [
        ('centos:centos6', 'centos'),
        ('centos', 'centos'),
        ('library/redis:7', 'redis'),
        ('registry:5000/team/app:1.2', 'app'),
        ('registry.example.com:5000/team/app', 'app'),
        ('ghcr.io/org/tool@sha256:' + 'a' * 64, 'tool'),
        ('ghcr.io/org/tool:1.0@sha256:' + 'b' * 64, 'tool'),
        ('sha256:' + 'c' * 64, None),
        ('c' * 64, None),
        ('', None),
        (None, None),
    ])
    def test_image_service_name(self, image, expected):
        assert svc.image_service_name(image) == expected

    def test_container_name_used_for_bare_image_id(self):
        result = svc.container_services(container(name='adhoc', image='sha256:' + 'd' * 64), OPTS)
        assert names(result) == ['adhoc']


class TestRegistrator:
    def test_one_port(self):
        result = svc.container_services(
            container(name='kappa-test-1', image='centos:centos6', ports=[published(8000, 32771)]), OPTS)
        assert result.skipped == []
        (service,) = result.services
        assert service.name == 'centos'
        assert service.id == 'core-01:kappa-test-1:8000'
        assert (service.ip, service.port) == (NODE, 32771)
        assert service.key() == '/services/centos/core-01:kappa-test-1:8000'
        assert service.value() == '10.10.0.11:32771'
        assert json.loads(service.value('json')) == {'host': NODE, 'port': 32771}
        assert service.backend == Backend(NODE, 32771)
        assert service.tags == () and service.attrs == {}
        assert (service.container, service.exposed_port, service.proto) == ('kappa-test-1', 8000, 'tcp')

    def test_leading_slash_of_docker_names_is_dropped(self):
        result = svc.container_services(container(name='/web1'), OPTS)
        assert result.services[0].id == 'core-01:web1:80'

    def test_two_ports_get_suffix(self):
        result = svc.container_services(
            container(ports=[published(443, 32001), published(80, 32000)]), OPTS)
        assert [(s.name, s.id, s.port) for s in result.services] == [
            ('nginx-80', 'core-01:web1:80', 32000),
            ('nginx-443', 'core-01:web1:443', 32001),
        ]

    def test_generic_service_name_with_two_ports_still_gets_suffix(self):
        result = svc.container_services(
            container(ports=[published(80, 32000), published(443, 32001)], labels={'SERVICE_NAME': 'front'}),
            OPTS)
        assert names(result) == ['front-80', 'front-443']

    def test_port_specific_name_has_no_suffix(self):
        result = svc.container_services(container(
            ports=[published(80, 32000), published(443, 32001)],
            env=['SERVICE_443_NAME=secure', 'SERVICE_NAME=front']), OPTS)
        assert names(result) == ['front-80', 'secure']

    def test_empty_port_specific_name_does_not_override(self):
        result = svc.container_services(container(
            env=['SERVICE_80_NAME=', 'SERVICE_NAME=front']), OPTS)
        assert names(result) == ['front']

    def test_udp_port(self):
        result = svc.container_services(container(
            name='dns', image='coredns/coredns:1.11',
            ports=[published(53, 5353, 'udp'), published(53, 5354, 'tcp')]), OPTS)
        by_proto = {s.proto: s for s in result.services}
        assert by_proto['udp'].id == 'core-01:dns:53:udp'
        assert by_proto['udp'].tags == ('udp',)
        assert by_proto['udp'].port == 5353
        assert by_proto['tcp'].id == 'core-01:dns:53'
        assert by_proto['tcp'].tags == ()
        # two eligible ports: both names carry the port suffix
        assert sorted(names(result)) == ['coredns-53', 'coredns-53']
        assert len({s.key() for s in result.services}) == 2

    def test_service_name_from_label(self):
        result = svc.container_services(container(labels={'SERVICE_NAME': 'from-label'}), OPTS)
        assert names(result) == ['from-label']

    def test_service_name_from_env(self):
        result = svc.container_services(container(env=['PATH=/bin', 'SERVICE_NAME=from-env']), OPTS)
        assert names(result) == ['from-env']

    def test_labels_win_over_env(self):
        result = svc.container_services(container(
            labels={'SERVICE_NAME': 'from-label', 'SERVICE_TAGS': 'l1'},
            env=['SERVICE_NAME=from-env', 'SERVICE_TAGS=e1', 'SERVICE_REGION=eu']), OPTS)
        (service,) = result.services
        assert service.name == 'from-label'
        assert service.tags == ('l1',)
        assert service.attrs == {'region': 'eu'}

    def test_port_specific_env_beats_generic_label(self):
        result = svc.container_services(container(
            labels={'SERVICE_NAME': 'generic'}, env=['SERVICE_80_NAME=specific']), OPTS)
        assert names(result) == ['specific']

    def test_env_as_mapping(self):
        result = svc.container_services(container(env={'SERVICE_NAME': 'mapped'}), OPTS)
        assert names(result) == ['mapped']

    def test_env_entries_without_equals_are_ignored(self):
        result = svc.container_services(container(env=['SERVICE_NAME', 'SERVICE_TAGS=a=b']), OPTS)
        assert names(result) == ['nginx'] and result.services[0].tags == ('a=b',)

    def test_prefix_is_case_sensitive(self):
        result = svc.container_services(container(env=['service_name=lower']), OPTS)
        assert names(result) == ['nginx']

    @pytest.mark.parametrize('value', ['true', '1', 'yes', 'anything'])
    def test_service_ignore(self, value):
        result = svc.container_services(container(labels={'SERVICE_IGNORE': value}), OPTS)
        assert result.services == []
        assert reasons(result) == ['SERVICE_IGNORE is set']

    @pytest.mark.parametrize('value', ['', 'false', 'False', '0', 'no', 'off'])
    def test_service_ignore_false_values(self, value):
        result = svc.container_services(container(env=['SERVICE_IGNORE=' + value]), OPTS)
        assert names(result) == ['nginx']

    def test_port_specific_ignore(self):
        result = svc.container_services(container(
            ports=[published(80, 32000), published(9100, 32001)], env=['SERVICE_9100_IGNORE=1']), OPTS)
        # the suffix still applies: two ports are eligible, one is ignored
        assert names(result) == ['nginx-80']
        assert [(s.port, s.reason) for s in result.skipped] == [(9100, 'SERVICE_IGNORE is set')]

    def test_port_specific_ignore_false_overrides_generic(self):
        result = svc.container_services(container(
            ports=[published(80, 32000), published(81, 32001)],
            labels={'SERVICE_IGNORE': 'true', 'SERVICE_81_IGNORE': 'false'}), OPTS)
        assert names(result) == ['nginx-81']

    def test_no_published_port(self):
        result = svc.container_services(container(ports=[unpublished(80)]), OPTS)
        assert result.services == []
        assert reasons(result) == ['port is not published on the host']

    def test_no_ports_at_all(self):
        result = svc.container_services(container(ports=[]), OPTS)
        assert result.services == []
        assert reasons(result) == ['no exposed or published ports']

    def test_unpublished_port_does_not_count_for_suffix(self):
        result = svc.container_services(container(ports=[published(80, 32000), unpublished(9000)]), OPTS)
        assert names(result) == ['nginx']
        assert [(s.port, s.reason) for s in result.skipped] == [(9000, 'port is not published on the host')]

    def test_explicit_mode(self):
        opts = OPTS._replace(explicit=True)
        assert svc.container_services(container(), opts).services == []
        assert reasons(svc.container_services(container(), opts)) == ['explicit mode and no SERVICE_NAME']
        assert names(svc.container_services(container(env=['SERVICE_NAME=api']), opts)) == ['api']
        both = svc.container_services(container(
            ports=[published(80, 32000), published(81, 32001)], labels={'SERVICE_81_NAME': 'metrics'}), opts)
        assert names(both) == ['metrics']
        assert [s.port for s in both.skipped] == [80]

    def test_internal_mode(self):
        opts = OPTS._replace(internal=True)
        result = svc.container_services(
            container(ports=[unpublished(6379)], image='redis:7', ip='172.17.0.9'), opts)
        (service,) = result.services
        assert (service.name, service.ip, service.port) == ('redis', '172.17.0.9', 6379)
        published_too = svc.container_services(
            container(ports=[published(80, 32000)], ip='172.17.0.9'), opts)
        assert published_too.services[0].backend == Backend('172.17.0.9', 80)

    def test_internal_mode_without_container_ip(self):
        result = svc.container_services(container(ip=None), OPTS._replace(internal=True))
        assert result.services == []
        assert reasons(result) == ['internal mode but the container has no IP address']

    def test_host_network_registers_exposed_ports(self):
        result = svc.container_services(
            container(network_mode='host', ports=[unpublished(9000)], ip=None), OPTS)
        assert result.services[0].backend == Backend(NODE, 9000)
        internal = svc.container_services(
            container(network_mode='host', ports=[unpublished(9000)], ip=None), OPTS._replace(internal=True))
        assert internal.services[0].backend == Backend(NODE, 9000)

    def test_shared_network_namespace_is_skipped(self):
        result = svc.container_services(container(network_mode='container:abc123'), OPTS)
        assert result.services == []
        assert 'abc123' in reasons(result)[0]

    def test_specific_binding_ip_wins_over_node_address(self):
        result = svc.container_services(container(ports=[published(80, 8080, host_ip='10.10.0.99')]), OPTS)
        assert result.services[0].backend == Backend('10.10.0.99', 8080)
        registrator_like = svc.container_services(
            container(ports=[published(80, 8080, host_ip='10.10.0.99')]), OPTS._replace(use_binding_ip=False))
        assert registrator_like.services[0].backend == Backend(NODE, 8080)

    @pytest.mark.parametrize('host_ip', ['0.0.0.0', '', None, '::'])
    def test_wildcard_binding_uses_node_address(self, host_ip):
        result = svc.container_services(container(ports=[published(80, 8080, host_ip=host_ip)]), OPTS)
        assert result.services[0].backend == Backend(NODE, 8080)

    @pytest.mark.parametrize('host_ip', ['127.0.0.1', '::1'])
    def test_loopback_binding_is_not_registered(self, host_ip):
        result = svc.container_services(container(ports=[published(80, 8080, host_ip=host_ip)]), OPTS)
        assert result.services == []
        assert 'loopback' in reasons(result)[0]

    def test_ipv6_binding(self):
        result = svc.container_services(container(ports=[published(80, 8080, host_ip='fd00::5')]), OPTS)
        assert result.services[0].value() == '[fd00::5]:8080'

    def test_no_advertise_ip(self):
        result = svc.container_services(container(), RegistratorOptions(hostname='core-01'))
        assert result.services == []
        assert reasons(result) == ['no address to advertise (advertise_ip is not set)']

    @pytest.mark.parametrize('health, registered', [
        (None, True), ('', True), ('none', True), ('healthy', True),
        ('starting', False), ('unhealthy', False),
    ])
    def test_health_gating(self, health, registered):
        result = svc.container_services(container(health=health), OPTS)
        assert bool(result.services) is registered
        if not registered:
            assert 'health' in reasons(result)[0] and health in reasons(result)[0]

    def test_health_gating_can_be_disabled(self):
        result = svc.container_services(container(health='starting'), OPTS._replace(require_healthy=False))
        assert names(result) == ['nginx']

    def test_not_running(self):
        result = svc.container_services(container(running=False), OPTS)
        assert result.services == [] and reasons(result) == ['container is not running']

    def test_tags_and_attrs(self):
        result = svc.container_services(container(
            ports=[published(80, 32000), published(53, 32001, 'udp')],
            labels={'SERVICE_TAGS': 'web, prod,has\\,comma,,web', 'SERVICE_53_TAGS': 'dns',
                    'SERVICE_REGION': 'eu-west', 'SERVICE_80_CHECK_HTTP': '/health',
                    'SERVICE_53_CHECK_HTTP': '/never', 'OTHER': 'x'}),
            OPTS._replace(force_tags=('cluster-a',)))
        by_port = {s.exposed_port: s for s in result.services}
        assert by_port[80].tags == ('web', 'prod', 'has,comma', 'cluster-a')
        assert by_port[53].tags == ('dns', 'cluster-a', 'udp')
        assert by_port[80].attrs == {'region': 'eu-west', 'check_http': '/health'}
        assert by_port[53].attrs == {'region': 'eu-west', 'check_http': '/never'}

    def test_service_id_override(self):
        result = svc.container_services(container(labels={'SERVICE_ID': 'web-primary'}), OPTS)
        assert result.services[0].id == 'web-primary'
        assert result.services[0].key() == '/services/nginx/web-primary'

    def test_colliding_keys_within_container(self):
        result = svc.container_services(container(
            ports=[published(80, 32000), published(81, 32001)],
            labels={'SERVICE_80_NAME': 'same', 'SERVICE_81_NAME': 'same', 'SERVICE_ID': 'fixed'}), OPTS)
        assert [s.exposed_port for s in result.services] == [80]
        assert result.skipped[0].port == 81 and 'same service name and id' in result.skipped[0].reason

    @pytest.mark.parametrize('labels, fragment', [
        ({'SERVICE_NAME': 'a/b'}, 'service name'),
        ({'SERVICE_NAME': 'has space'}, 'service name'),
        ({'SERVICE_ID': 'x/y'}, 'service id'),
    ])
    def test_invalid_names_are_skipped(self, labels, fragment):
        result = svc.container_services(container(labels=labels), OPTS)
        assert result.services == []
        assert fragment in reasons(result)[0]

    def test_duplicate_port_entries_first_wins(self):
        result = svc.container_services(container(ports=[published(80, 32000), published(80, 32999)]), OPTS)
        assert [s.port for s in result.services] == [32000]
        assert names(result) == ['nginx']

    @pytest.mark.parametrize('desc, fragment', [
        ({'image': 'x'}, 'lacks a name'),
        ({'name': 'c', 'ports': [{'port': 'abc'}]}, "'c'"),
        ({'name': 'c', 'ports': [{'port': 80, 'host_port': 70000}]}, 'out of range'),
        ({'name': 'c', 'ports': ['80/tcp']}, 'must be a mapping'),
    ])
    def test_bad_descriptions_raise_clear_errors(self, desc, fragment):
        with pytest.raises(ValueError) as err:
            svc.container_services(desc, OPTS)
        assert fragment in str(err.value)

    @pytest.mark.parametrize('opts, fragment', [
        (RegistratorOptions(hostname=''), 'hostname'),
        (RegistratorOptions(hostname='a/b'), 'hostname'),
        (RegistratorOptions(hostname='n', advertise_ip='0.0.0.0'), 'advertise_ip'),
        (RegistratorOptions(hostname='n', advertise_ip='node1'), 'advertise_ip'),
        (RegistratorOptions(hostname='n', force_tags='abc'), 'force_tags'),
        ({'hostname': 'n'}, 'RegistratorOptions'),
    ])
    def test_bad_options(self, opts, fragment):
        with pytest.raises(ValueError) as err:
            svc.container_services(container(), opts)
        assert fragment in str(err.value)


class TestMetadataHelpers:
    def test_split_tags(self):
        assert svc.split_tags('a,b , c') == ['a', 'b', 'c']
        assert svc.split_tags('x\\,y,z') == ['x,y', 'z']
        assert svc.split_tags('') == [] and svc.split_tags(None) == []
        assert svc.split_tags(',,a,') == ['a']

    def test_service_metadata_and_port_metadata(self):
        env = ['SERVICE_NAME=g', 'SERVICE_8080_NAME=e8080', 'SERVICE_=ignored', 'NOT_SERVICE_NAME=x']
        meta = svc.service_metadata({'SERVICE_80_NAME': 'l80'}, env)
        assert meta == {'name': 'g', '8080_name': 'e8080', '80_name': 'l80'}
        settings, from_port = svc.port_metadata(meta, 80)
        assert settings == {'name': 'l80'} and from_port == {'name'}
        settings, from_port = svc.port_metadata(meta, 8080)
        assert settings == {'name': 'e8080'} and from_port == {'name'}
        settings, from_port = svc.port_metadata(meta, 443)
        assert settings == {'name': 'g'} and from_port == set()


# ---------------------------------------------------------------------------
# Docker inspect -> description
# ---------------------------------------------------------------------------

def inspect_doc(**overrides):
    doc = {
        'Id': 'f' * 64,
        'Name': '/kappa-test-1',
        'Config': {
            'Hostname': 'kappa-test-1',
            'Image': 'centos:centos6',
            'Env': ['PATH=/usr/bin', 'SERVICE_TAGS=www'],
            'Labels': {'SERVICE_NAME': 'centos'},
            'ExposedPorts': {'8000/tcp': {}, '9000/tcp': {}},
        },
        'HostConfig': {'NetworkMode': 'bridge'},
        'State': {'Running': True, 'Status': 'running'},
        'NetworkSettings': {
            'IPAddress': '172.17.0.3',
            'Ports': {
                '8000/tcp': [{'HostIp': '::', 'HostPort': '32771'}, {'HostIp': '0.0.0.0', 'HostPort': '32771'}],
                '9000/tcp': None,
            },
            'Networks': {'bridge': {'IPAddress': '172.17.0.3'}},
        },
    }
    for key, value in overrides.items():
        doc[key] = value
    return doc


class TestInspect:
    def test_bridge_container(self):
        desc = svc.container_from_inspect(inspect_doc())
        assert desc['name'] == 'kappa-test-1'
        assert desc['image'] == 'centos:centos6'
        assert desc['ip'] == '172.17.0.3'
        assert desc['ports'] == [
            {'port': 8000, 'proto': 'tcp', 'host_ip': '0.0.0.0', 'host_port': 32771},
            {'port': 9000, 'proto': 'tcp', 'host_ip': None, 'host_port': None},
        ]
        assert desc['health'] is None and desc['running'] is True
        result = svc.container_services(desc, OPTS)
        assert [(s.name, s.id, s.value(), s.tags) for s in result.services] == [
            ('centos', 'core-01:kappa-test-1:8000', '10.10.0.11:32771', ('www',))]
        assert [s.port for s in result.skipped] == [9000]

    def test_ipv6_only_binding_and_udp(self):
        doc = inspect_doc()
        doc['NetworkSettings']['Ports'] = {'53/udp': [{'HostIp': 'fd00::9', 'HostPort': '5353'}]}
        doc['Config']['ExposedPorts'] = {'53/udp': {}}
        desc = svc.container_from_inspect(doc)
        assert desc['ports'] == [{'port': 53, 'proto': 'udp', 'host_ip': 'fd00::9', 'host_port': 5353}]
        (service,) = svc.container_services(desc, OPTS).services
        assert service.id == 'core-01:kappa-test-1:53:udp' and service.value() == '[fd00::9]:5353'

    def test_user_network_without_top_level_ip(self):
        doc = inspect_doc(HostConfig={'NetworkMode': 'appnet'})
        doc['NetworkSettings']['IPAddress'] = ''
        doc['NetworkSettings']['Networks'] = {'aaa': {'IPAddress': '10.0.9.9'}, 'appnet': {'IPAddress': '10.0.5.5'}}
        assert svc.container_from_inspect(doc)['ip'] == '10.0.5.5'
        del doc['NetworkSettings']['Networks']['appnet']
        assert svc.container_from_inspect(doc)['ip'] == '10.0.9.9'

    def test_paused_container_counts_as_not_running(self):
        doc = inspect_doc(State={'Running': True, 'Paused': True, 'Status': 'paused'})
        desc = svc.container_from_inspect(doc)
        assert desc['running'] is False
        assert svc.container_services(desc, OPTS).services == []
        doc['State']['Paused'] = False
        assert svc.container_from_inspect(doc)['running'] is True

    def test_host_network(self):
        doc = inspect_doc(HostConfig={'NetworkMode': 'host'})
        doc['NetworkSettings'] = {'Ports': {}, 'IPAddress': '', 'Networks': {'host': {'IPAddress': ''}}}
        desc = svc.container_from_inspect(doc)
        assert desc['ip'] is None
        result = svc.container_services(desc, OPTS)
        assert [(s.name, s.port) for s in result.services] == [('centos-8000', 8000), ('centos-9000', 9000)]

    def test_health_and_state(self):
        doc = inspect_doc(State={'Running': True, 'Health': {'Status': 'starting'}})
        assert svc.container_from_inspect(doc)['health'] == 'starting'
        assert svc.container_services(svc.container_from_inspect(doc), OPTS).services == []
        doc['State']['Health']['Status'] = 'healthy'
        assert names(svc.container_services(svc.container_from_inspect(doc), OPTS)) == ['centos']
        stopped = svc.container_from_inspect(inspect_doc(State={'Running': False}))
        assert stopped['running'] is False

    def test_sparse_document(self):
        desc = svc.container_from_inspect({'Name': '/bare', 'Config': {'Labels': None, 'Env': None},
                                           'NetworkSettings': {'Ports': None}})
        assert desc['labels'] == {} and desc['env'] == [] and desc['ports'] == []
        assert reasons(svc.container_services(desc, OPTS)) == ['no exposed or published ports']
        with pytest.raises(ValueError):
            svc.container_from_inspect(None)


class TestPublishedBackend:
    def test_reads_current_binding(self):
        desc = svc.container_from_inspect(inspect_doc())
        assert svc.published_backend(desc, 8000, advertise_ip=NODE) == Backend(NODE, 32771)
        moved = inspect_doc()
        moved['NetworkSettings']['Ports']['8000/tcp'] = [{'HostIp': '0.0.0.0', 'HostPort': '40001'}]
        assert svc.published_backend(svc.container_from_inspect(moved), 8000, advertise_ip=NODE) == \
            Backend(NODE, 40001)

    def test_errors(self):
        desc = svc.container_from_inspect(inspect_doc())
        with pytest.raises(ValueError, match='not published'):
            svc.published_backend(desc, 9000, advertise_ip=NODE)
        with pytest.raises(ValueError, match='has no port 7000/tcp'):
            svc.published_backend(desc, 7000, advertise_ip=NODE)
        with pytest.raises(ValueError, match='no address to advertise'):
            svc.published_backend(desc, 8000)
        loop = container(ports=[published(6379, 49155, host_ip='127.0.0.1')])
        with pytest.raises(ValueError, match='loopback'):
            svc.published_backend(loop, 6379, advertise_ip=NODE)

    def test_specific_binding_and_host_network(self):
        desc = container(ports=[published(6379, 49155, host_ip='10.132.181.182')])
        assert svc.published_backend(desc, 6379, advertise_ip=NODE) == Backend('10.132.181.182', 49155)
        host = container(network_mode='host', ports=[unpublished(6379)])
        assert svc.published_backend(host, 6379, advertise_ip=NODE) == Backend(NODE, 6379)


# ---------------------------------------------------------------------------
# registrator sync plan
# ---------------------------------------------------------------------------

class TestPlanSync:
    def services(self, *descs):
        found = []
        for desc in descs:
            found.extend(svc.container_services(desc, OPTS).services)
        return found

    def test_fresh_start_writes_everything(self):
        wanted = self.services(container(name='a', ports=[published(80, 32000)]),
                               container(name='b', ports=[published(80, 32001)]))
        plan = svc.plan_sync(wanted, [], 'core-01')
        assert plan.put == {
            '/services/nginx/core-01:a:80': '10.10.0.11:32000',
            '/services/nginx/core-01:b:80': '10.10.0.11:32001',
        }
        assert plan.changed == list(plan.put)
        assert plan.delete == [] and plan.conflicts == []

    def test_stale_and_changed_keys(self):
        wanted = self.services(container(name='a', ports=[published(80, 32000)]),
                               container(name='b', ports=[published(80, 40000)]))
        existing = [
            ('/services/nginx', None),
            ('/services/nginx/core-01:a:80', '10.10.0.11:32000'),        # unchanged
            ('/services/nginx/core-01:b:80', b'10.10.0.11:32001'),       # moved to a new host port
            ('/services/nginx/core-01:gone:80', '10.10.0.11:32002'),     # container stopped meanwhile
            ('/services/dns/core-01:gone-dns:53:udp', '10.10.0.11:5353'),  # stale udp key
            ('/services/nginx/core-02:c:80', '10.10.0.12:32000'),        # another node's key
            ('/services/nginx/fixed-id', '10.10.0.11:1'),                # not provably ours
            ('/services/redis-A/redis.service', '{"host": "10.10.0.11", "port": 6379}'),
        ]
        plan = svc.plan_sync(wanted, existing, 'core-01')
        assert plan.changed == ['/services/nginx/core-01:b:80']
        assert plan.delete == ['/services/dns/core-01:gone-dns:53:udp', '/services/nginx/core-01:gone:80']
        assert plan.put['/services/nginx/core-01:b:80'] == '10.10.0.11:40000'

    def test_bytes_from_etcd_v3(self):
        wanted = self.services(container(name='a', ports=[published(80, 32000)]))
        existing = [(b'/services/nginx/core-01:a:80', b'10.10.0.11:32000'),
                    (b'/services/nginx/core-01:gone:80', b'10.10.0.11:1')]
        plan = svc.plan_sync(wanted, existing, 'core-01')
        assert plan.changed == [] and plan.delete == ['/services/nginx/core-01:gone:80']

    def test_second_pass_changes_nothing(self):
        wanted = self.services(container(name='a', ports=[published(80, 32000), published(53, 32001, 'udp')]))
        first = svc.plan_sync(wanted, [], 'core-01')
        second = svc.plan_sync(wanted, list(first.put.items()), 'core-01')
        assert second.changed == [] and second.delete == []
        assert second.put == first.put

    def test_custom_prefix(self):
        wanted = self.services(container(name='a'))
        plan = svc.plan_sync(wanted, [('/svc/old/core-01:xx:1', '1.1.1.1:1'),
                                      ('/services/old/core-01:xx:1', '1.1.1.1:1')],
                             'core-01', prefix='/svc')
        assert list(plan.put) == ['/svc/nginx/core-01:a:80']
        assert plan.delete == ['/svc/old/core-01:xx:1']

    def test_conflicting_services_keep_first(self):
        one = svc.container_services(container(name='a', labels={'SERVICE_ID': 'shared'}), OPTS).services
        two = svc.container_services(container(name='b', labels={'SERVICE_ID': 'shared'},
                                               ports=[published(80, 32999)]), OPTS).services
        plan = svc.plan_sync(two + one, [], 'core-01')
        assert plan.put == {'/services/nginx/shared': '10.10.0.11:32768'}
        assert len(plan.conflicts) == 1 and '/services/nginx/shared' in plan.conflicts[0]
