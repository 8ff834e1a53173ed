# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registrator's model: which services one container offers."""

from __future__ import annotations

import json

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import (
    Backend,
    owned_keys,
    parse_service_id,
)
from etcdfleet_agents.services.containers import (
    RegistratorOptions,
    container_services,
    image_service_name,
    port_metadata,
    service_metadata,
    split_tags,
)
from service_samples import NODE, OPTS, container, names, published, reasons, unpublished


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
        assert image_service_name(image) == expected

    def test_container_name_used_for_bare_image_id(self):
        result = container_services(container(name='adhoc', image='sha256:' + 'd' * 64), OPTS)
        assert names(result) == ['adhoc']


class TestRegistrator:
    def test_one_port(self):
        result = container_services(
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
        result = container_services(container(name='/web1'), OPTS)
        assert result.services[0].id == 'core-01:web1:80'

    def test_two_ports_get_suffix(self):
        result = container_services(
            container(ports=[published(443, 32001), published(80, 32000)]), OPTS)
        assert [(s.name, s.id, s.port) for s in result.services] == [
            ('nginx-80', 'core-01:web1:80', 32000),
            ('nginx-443', 'core-01:web1:443', 32001),
        ]

    def test_generic_service_name_with_two_ports_still_gets_suffix(self):
        result = container_services(
            container(ports=[published(80, 32000), published(443, 32001)], labels={'SERVICE_NAME': 'front'}),
            OPTS)
        assert names(result) == ['front-80', 'front-443']

    def test_port_specific_name_has_no_suffix(self):
        result = container_services(container(
            ports=[published(80, 32000), published(443, 32001)],
            env=['SERVICE_443_NAME=secure', 'SERVICE_NAME=front']), OPTS)
        assert names(result) == ['front-80', 'secure']

    def test_empty_port_specific_name_does_not_override(self):
        result = container_services(container(
            env=['SERVICE_80_NAME=', 'SERVICE_NAME=front']), OPTS)
        assert names(result) == ['front']

    def test_udp_port(self):
        result = container_services(container(
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
        result = container_services(container(labels={'SERVICE_NAME': 'from-label'}), OPTS)
        assert names(result) == ['from-label']

    def test_service_name_from_env(self):
        result = container_services(container(env=['PATH=/bin', 'SERVICE_NAME=from-env']), OPTS)
        assert names(result) == ['from-env']

    def test_labels_win_over_env(self):
        result = container_services(container(
            labels={'SERVICE_NAME': 'from-label', 'SERVICE_TAGS': 'l1'},
            env=['SERVICE_NAME=from-env', 'SERVICE_TAGS=e1', 'SERVICE_REGION=eu']), OPTS)
        (service,) = result.services
        assert service.name == 'from-label'
        assert service.tags == ('l1',)
        assert service.attrs == {'region': 'eu'}

    def test_port_specific_env_beats_generic_label(self):
        result = container_services(container(
            labels={'SERVICE_NAME': 'generic'}, env=['SERVICE_80_NAME=specific']), OPTS)
        assert names(result) == ['specific']

    def test_env_as_mapping(self):
        result = container_services(container(env={'SERVICE_NAME': 'mapped'}), OPTS)
        assert names(result) == ['mapped']

    def test_env_entries_without_equals_are_ignored(self):
        result = container_services(container(env=['SERVICE_NAME', 'SERVICE_TAGS=a=b']), OPTS)
        assert names(result) == ['nginx'] and result.services[0].tags == ('a=b',)

    def test_prefix_is_case_sensitive(self):
        result = container_services(container(env=['service_name=lower']), OPTS)
        assert names(result) == ['nginx']

    @pytest.mark.parametrize('value', ['true', '1', 'yes', 'anything'])
    def test_service_ignore(self, value):
        result = container_services(container(labels={'SERVICE_IGNORE': value}), OPTS)
        assert result.services == []
        assert reasons(result) == ['SERVICE_IGNORE is set']

    @pytest.mark.parametrize('value', ['', 'false', 'False', '0', 'no', 'off'])
    def test_service_ignore_false_values(self, value):
        result = container_services(container(env=['SERVICE_IGNORE=' + value]), OPTS)
        assert names(result) == ['nginx']

    def test_port_specific_ignore(self):
        result = container_services(container(
            ports=[published(80, 32000), published(9100, 32001)], env=['SERVICE_9100_IGNORE=1']), OPTS)
        # the suffix still applies: two ports are eligible, one is ignored
        assert names(result) == ['nginx-80']
        assert [(s.port, s.reason) for s in result.skipped] == [(9100, 'SERVICE_IGNORE is set')]

    def test_port_specific_ignore_false_overrides_generic(self):
        result = container_services(container(
            ports=[published(80, 32000), published(81, 32001)],
            labels={'SERVICE_IGNORE': 'true', 'SERVICE_81_IGNORE': 'false'}), OPTS)
        assert names(result) == ['nginx-81']

    def test_no_published_port(self):
        result = container_services(container(ports=[unpublished(80)]), OPTS)
        assert result.services == []
        assert reasons(result) == ['port is not published on the host']

    def test_no_ports_at_all(self):
        result = container_services(container(ports=[]), OPTS)
        assert result.services == []
        assert reasons(result) == ['no exposed or published ports']

    def test_unpublished_port_does_not_count_for_suffix(self):
        result = container_services(container(ports=[published(80, 32000), unpublished(9000)]), OPTS)
        assert names(result) == ['nginx']
        assert [(s.port, s.reason) for s in result.skipped] == [(9000, 'port is not published on the host')]

    def test_explicit_mode(self):
        opts = OPTS._replace(explicit=True)
        assert container_services(container(), opts).services == []
        assert reasons(container_services(container(), opts)) == ['explicit mode and no SERVICE_NAME']
        assert names(container_services(container(env=['SERVICE_NAME=api']), opts)) == ['api']
        both = container_services(container(
            ports=[published(80, 32000), published(81, 32001)], labels={'SERVICE_81_NAME': 'metrics'}), opts)
        assert names(both) == ['metrics']
        assert [s.port for s in both.skipped] == [80]

    def test_internal_mode(self):
        opts = OPTS._replace(internal=True)
        result = container_services(
            container(ports=[unpublished(6379)], image='redis:7', ip='172.17.0.9'), opts)
        (service,) = result.services
        assert (service.name, service.ip, service.port) == ('redis', '172.17.0.9', 6379)
        published_too = container_services(
            container(ports=[published(80, 32000)], ip='172.17.0.9'), opts)
        assert published_too.services[0].backend == Backend('172.17.0.9', 80)

    def test_internal_mode_without_container_ip(self):
        result = container_services(container(ip=None), OPTS._replace(internal=True))
        assert result.services == []
        assert reasons(result) == ['internal mode but the container has no IP address']

    def test_host_network_registers_exposed_ports(self):
        result = container_services(
            container(network_mode='host', ports=[unpublished(9000)], ip=None), OPTS)
        assert result.services[0].backend == Backend(NODE, 9000)
        internal = container_services(
            container(network_mode='host', ports=[unpublished(9000)], ip=None), OPTS._replace(internal=True))
        assert internal.services[0].backend == Backend(NODE, 9000)

    def test_shared_network_namespace_is_skipped(self):
        result = container_services(container(network_mode='container:abc123'), OPTS)
        assert result.services == []
        assert 'abc123' in reasons(result)[0]

    def test_specific_binding_ip_wins_over_node_address(self):
        result = container_services(container(ports=[published(80, 8080, host_ip='10.10.0.99')]), OPTS)
        assert result.services[0].backend == Backend('10.10.0.99', 8080)
        registrator_like = container_services(
            container(ports=[published(80, 8080, host_ip='10.10.0.99')]), OPTS._replace(use_binding_ip=False))
        assert registrator_like.services[0].backend == Backend(NODE, 8080)

    @pytest.mark.parametrize('host_ip', ['0.0.0.0', '', None, '::'])
    def test_wildcard_binding_uses_node_address(self, host_ip):
        result = container_services(container(ports=[published(80, 8080, host_ip=host_ip)]), OPTS)
        assert result.services[0].backend == Backend(NODE, 8080)

    @pytest.mark.parametrize('host_ip', ['127.0.0.1', '::1'])
    def test_loopback_binding_is_not_registered(self, host_ip):
        result = container_services(container(ports=[published(80, 8080, host_ip=host_ip)]), OPTS)
        assert result.services == []
        assert 'loopback' in reasons(result)[0]

    def test_ipv6_binding(self):
        result = container_services(container(ports=[published(80, 8080, host_ip='fd00::5')]), OPTS)
        assert result.services[0].value() == '[fd00::5]:8080'

    def test_no_advertise_ip(self):
        result = container_services(container(), RegistratorOptions(hostname='core-01'))
        assert result.services == []
        assert reasons(result) == ['no address to advertise (advertise_ip is not set)']

    @pytest.mark.parametrize('health, registered', [
        (None, True), ('', True), ('none', True), ('healthy', True),
        ('starting', False), ('unhealthy', False),
    ])
    def test_health_gating(self, health, registered):
        result = container_services(container(health=health), OPTS)
        assert bool(result.services) is registered
        if not registered:
            assert 'health' in reasons(result)[0] and health in reasons(result)[0]

    def test_health_gating_can_be_disabled(self):
        result = container_services(container(health='starting'), OPTS._replace(require_healthy=False))
        assert names(result) == ['nginx']

    def test_not_running(self):
        result = container_services(container(running=False), OPTS)
        assert result.services == [] and reasons(result) == ['container is not running']

    def test_tags_and_attrs(self):
        result = container_services(container(
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
        result = container_services(container(labels={'SERVICE_ID': 'web-primary'}), OPTS)
        assert result.services[0].id == 'web-primary'
        assert result.services[0].key() == '/services/nginx/web-primary'

    def test_colliding_keys_within_container(self):
        result = container_services(container(
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
        result = container_services(container(labels=labels), OPTS)
        assert result.services == []
        assert fragment in reasons(result)[0]

    def test_duplicate_port_entries_first_wins(self):
        result = container_services(container(ports=[published(80, 32000), published(80, 32999)]), OPTS)
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
            container_services(desc, OPTS)
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
            container_services(container(), opts)
        assert fragment in str(err.value)


class TestMetadataHelpers:
    def test_split_tags(self):
        assert split_tags('a,b , c') == ['a', 'b', 'c']
        assert split_tags('x\\,y,z') == ['x,y', 'z']
        assert split_tags('') == [] and split_tags(None) == []
        assert split_tags(',,a,') == ['a']

    def test_service_metadata_and_port_metadata(self):
        env = ['SERVICE_NAME=g', 'SERVICE_8080_NAME=e8080', 'SERVICE_=ignored', 'NOT_SERVICE_NAME=x']
        meta = service_metadata({'SERVICE_80_NAME': 'l80'}, env)
        assert meta == {'name': 'g', '8080_name': 'e8080', '80_name': 'l80'}
        settings, from_port = port_metadata(meta, 80)
        assert settings == {'name': 'l80'} and from_port == {'name'}
        settings, from_port = port_metadata(meta, 8080)
        assert settings == {'name': 'e8080'} and from_port == {'name'}
        settings, from_port = port_metadata(meta, 443)
        assert settings == {'name': 'g'} and from_port == set()


class TestOwnedIds:
    def test_every_generated_id_is_recognized_as_owned(self):
        descs = [
            container(name='a', ports=[published(80, 1), published(53, 2, 'udp')]),
            container(name='kappa-test-1.v2_x', ports=[published(8000, 3)]),
            container(name='9', ports=[published(65535, 4, 'sctp')]),
        ]
        for hostname in ('core-01', 'node.example.com', 'n'):
            opts = OPTS._replace(hostname=hostname)
            for desc in descs:
                for service in container_services(desc, opts).services:
                    parsed = parse_service_id(service.id)
                    assert parsed == (hostname, desc['name'], service.exposed_port, service.proto)
                    assert owned_keys([service.key()], hostname) == [service.key()]
                    assert owned_keys([service.key()], hostname + 'x') == []
