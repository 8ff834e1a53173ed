# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docker-discover's model: the catalog of the services prefix and the exposure rules."""

from __future__ import annotations

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import (
    BAD_ADDRESS,
    BAD_JSON,
    BAD_PORT,
    WRONG_DEPTH,
    Backend,
    owned_keys,
)
from etcdfleet_agents.services.catalog import (
    Exposure,
    build_catalog,
    parse_exposures,
    select_exposures,
)
from hostile_names import HOSTILE


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
        catalog = build_catalog(SEED_PAIRS)
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
        forward = build_catalog(SEED_PAIRS)
        backward = build_catalog(list(reversed(SEED_PAIRS)))
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
        catalog = build_catalog(pairs)
        # good data is untouched
        assert catalog.backends('centos') == build_catalog(SEED_PAIRS).backends('centos')
        assert 'lonely' not in catalog.instances
        codes = {w.key: w.code for w in catalog.warnings}
        assert codes == {
            '/services/centos/core-04:evil:8000': BAD_ADDRESS,
            '/services/centos/core-05:evil:8000': BAD_PORT,
            '/services/centos/core-06:evil:8000': BAD_JSON,
            '/services/centos/core-07:evil:8000/deeper': WRONG_DEPTH,
            '/services/lonely': WRONG_DEPTH,
            '/services': WRONG_DEPTH,
            '/services/centos/core-10:evil:8000': BAD_ADDRESS,
        }
        for warning in catalog.warnings:
            assert warning.key in str(warning)

    def test_service_with_only_bad_entries_disappears(self):
        catalog = build_catalog([('/services/web/a', 'junk'), ('/services/web/b', '1.1.1.1:0')])
        assert catalog.instances == {}
        assert len(catalog.warnings) == 2

    def test_keys_outside_prefix_and_directories_are_ignored_silently(self):
        catalog = build_catalog([
            ('/services-old/web/a', '10.0.0.1:80'),
            ('/other', 'junk'),
            ('/services/web', None),
            ('/services/web/a', '10.0.0.2:80'),
        ])
        assert catalog.warnings == []
        assert catalog.names() == ['web']

    def test_duplicate_address_kept_once(self):
        catalog = build_catalog([
            ('/services/web/z-announcer', '{"host": "10.0.0.1", "port": 80}'),
            ('/services/web/n1:web:80', '10.0.0.1:80'),
            ('/services/web/n2:web:80', '10.0.0.2:80'),
        ])
        assert [(i.id, i.backend) for i in catalog.instances['web']] == [
            ('n1:web:80', Backend('10.0.0.1', 80)), ('n2:web:80', Backend('10.0.0.2', 80))]

    def test_bytes_keys_and_values(self):
        catalog = build_catalog([(b'/services/web/n1:web:80', b'10.0.0.1:80'),
                                 (b'/services/web/\xff', b'10.0.0.2:80')])
        assert catalog.backends('web') == [Backend('10.0.0.1', 80)]
        assert owned_keys([b'/services/web/n1:web:80'], 'n1') == ['/services/web/n1:web:80']

    def test_custom_prefix(self):
        pairs = [('/cl/svc/web/a', '10.0.0.1:80'), ('/services/web/b', '10.0.0.2:80')]
        catalog = build_catalog(pairs, prefix='/cl/svc/')
        assert catalog.backends('web') == [Backend('10.0.0.1', 80)]

    def test_hostnames_pass_through_option(self):
        pairs = [('/services/web/a', 'web.internal:80')]
        assert build_catalog(pairs).warnings[0].code == BAD_ADDRESS
        assert build_catalog(pairs, allow_hostnames=True).backends('web') == [Backend('web.internal', 80)]


# ---------------------------------------------------------------------------
# discover: exposures
# ---------------------------------------------------------------------------

class TestExposures:
    def test_explicit_list(self):
        config = parse_exposures([{'name': 'centos', 'port': 8000},
                                  {'name': 'api', 'port': '9000', 'mode': 'http', 'balance': 'leastconn'}])
        exposures, warnings = select_exposures(config, ['centos'])
        assert warnings == []
        assert exposures == [
            Exposure('centos', 8000, 'tcp', 'roundrobin', 'explicit'),
            Exposure('api', 9000, 'http', 'leastconn', 'explicit'),
        ]

    def test_default_mode_and_balance_are_configurable(self):
        config = parse_exposures([{'name': 'web', 'port': 80}], default_mode='http', default_balance='first')
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
            parse_exposures(services, reserved_ports=[1936])
        assert fragment in str(err.value)

    def test_same_service_on_two_ports_is_allowed(self):
        config = parse_exposures([{'name': 'web', 'port': 80, 'mode': 'http'}, {'name': 'web', 'port': 81}])
        assert [e.port for e in config.services] == [80, 81]

    def test_explicit_service_is_exposed_even_without_instances(self):
        config = parse_exposures([{'name': 'centos', 'port': 8000}])
        exposures, _warnings = select_exposures(config, [])
        assert [e.name for e in exposures] == ['centos']

    def test_glob_rule_takes_port_from_name_suffix(self):
        config = parse_exposures(
            [{'name': 'centos', 'port': 8000}],
            rule={'pattern': 'app-*', 'mode': 'http'}, reserved_ports=[1936])
        found = ['app-8080', 'app-9090', 'centos', 'other-7000', 'app-x']
        exposures, warnings = select_exposures(config, found)
        assert [(e.name, e.port, e.mode, e.source) for e in exposures] == [
            ('centos', 8000, 'tcp', 'explicit'),
            ('app-8080', 8080, 'http', 'rule'),
            ('app-9090', 9090, 'http', 'rule'),
        ]
        assert len(warnings) == 1 and "'app-x'" in warnings[0] and 'no port' in warnings[0]

    def test_regex_rule_with_port_group_and_base_port(self):
        config = parse_exposures(rule={
            'pattern': r'shard(?P<port>[0-9]+)', 'pattern_type': 'regex', 'base_port': 7000})
        exposures, warnings = select_exposures(config, ['shard1', 'shard12', 'shardX', 'xshard1'])
        assert warnings == []
        assert [(e.name, e.port) for e in exposures] == [('shard1', 7001), ('shard12', 7012)]

    def test_rule_conflicts_are_warned_and_deterministic(self):
        config = parse_exposures(
            [{'name': 'centos', 'port': 8000}],
            rule={'pattern': '*-*'}, reserved_ports=[1936])
        found = ['web-8000', 'b-1936', 'a-9000', 'c-9000', 'centos-8000', 'huge-70000']
        exposures, warnings = select_exposures(config, found)
        again, warnings_again = select_exposures(config, list(reversed(found)))
        assert exposures == again and warnings == warnings_again
        assert [(e.name, e.port) for e in exposures] == [('centos', 8000), ('a-9000', 9000)]
        text = '\n'.join(warnings)
        assert "'b-1936'" in text and 'reserved' in text
        assert "'c-9000'" in text and "already used by 'a-9000'" in text
        assert "'web-8000'" in text and "'centos-8000'" in text
        assert "'huge-70000'" in text and 'out of range' in text

    def test_rule_does_not_duplicate_explicit_names(self):
        config = parse_exposures([{'name': 'web-80', 'port': 8080}], rule={'pattern': 'web-*'})
        exposures, warnings = select_exposures(config, ['web-80'])
        assert [(e.name, e.port) for e in exposures] == [('web-80', 8080)]
        assert warnings == []

    def test_rule_exclude(self):
        config = parse_exposures(rule={'pattern': '*', 'exclude': ['docker-discover-1936']})
        exposures, warnings = select_exposures(config, ['docker-discover-1936', 'web-81'])
        assert [e.name for e in exposures] == ['web-81'] and warnings == []

    @pytest.mark.parametrize('what', sorted(HOSTILE))
    def test_rule_never_exposes_a_hostile_name(self, what):
        name = HOSTILE[what] + '-81'
        for rule in ({'pattern': '*'}, {'pattern': 'web*'}, {'pattern': 'w?b*'},
                     {'pattern': '.*', 'pattern_type': 'regex'}):
            config = parse_exposures(rule=rule)
            exposures, dummy = select_exposures(config, [name, 'web-82'])
            assert [e.name for e in exposures] == ['web-82'], (rule, exposures)

    @pytest.mark.parametrize('name', ['web-1\nlisten pwn-9', 'web-a/x-9', 'web-1\r-9'])
    def test_glob_star_stops_at_newline_and_slash(self, name):
        rule = parse_exposures(rule={'pattern': 'web-*'}).rule
        assert rule.port_for(name) is None
        assert rule.port_for('web-1.x_y-9') == 9

    def test_glob_classes_still_work(self):
        rule = parse_exposures(rule={'pattern': 'app-[0-9]*'}).rule
        assert rule.port_for('app-80') == 80 and rule.port_for('app-x-80') is None
        rule = parse_exposures(rule={'pattern': 'app-[!x]?'}).rule
        assert rule.port_for('app-81') == 81 and rule.port_for('app-x1') is None

    @pytest.mark.parametrize('what', ['newline', 'slash', 'space', 'hash', 'empty'])
    def test_explicit_and_excluded_names_are_checked(self, what):
        with pytest.raises(ValueError) as err:
            parse_exposures([{'name': HOSTILE[what], 'port': 8080}])
        assert repr(HOSTILE[what]) in str(err.value)
        with pytest.raises(ValueError) as err:
            parse_exposures(rule={'pattern': '*', 'exclude': [HOSTILE[what]]})
        assert 'exclude' in str(err.value)

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
            parse_exposures(rule=rule)
        assert fragment in str(err.value)
