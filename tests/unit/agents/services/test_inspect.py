# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker inspect documents -> container descriptions -> services, and announcers' published backends."""

from __future__ import annotations

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import Backend
from etcdfleet_agents.services.containers import (
    container_services,
    published_backend,
)
from etcdfleet_agents.docker.inspect import container_from_inspect
from service_samples import NODE, OPTS, container, names, published, reasons, unpublished


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
        desc = container_from_inspect(inspect_doc())
        assert desc['name'] == 'kappa-test-1'
        assert desc['image'] == 'centos:centos6'
        assert desc['ip'] == '172.17.0.3'
        assert desc['ports'] == [
            {'port': 8000, 'proto': 'tcp', 'host_ip': '0.0.0.0', 'host_port': 32771},
            {'port': 9000, 'proto': 'tcp', 'host_ip': None, 'host_port': None},
        ]
        assert desc['health'] is None and desc['running'] is True
        result = container_services(desc, OPTS)
        assert [(s.name, s.id, s.value(), s.tags) for s in result.services] == [
            ('centos', 'core-01:kappa-test-1:8000', '10.10.0.11:32771', ('www',))]
        assert [s.port for s in result.skipped] == [9000]

    def test_ipv6_only_binding_and_udp(self):
        doc = inspect_doc()
        doc['NetworkSettings']['Ports'] = {'53/udp': [{'HostIp': 'fd00::9', 'HostPort': '5353'}]}
        doc['Config']['ExposedPorts'] = {'53/udp': {}}
        desc = container_from_inspect(doc)
        assert desc['ports'] == [{'port': 53, 'proto': 'udp', 'host_ip': 'fd00::9', 'host_port': 5353}]
        (service,) = container_services(desc, OPTS).services
        assert service.id == 'core-01:kappa-test-1:53:udp' and service.value() == '[fd00::9]:5353'

    def test_user_network_without_top_level_ip(self):
        doc = inspect_doc(HostConfig={'NetworkMode': 'appnet'})
        doc['NetworkSettings']['IPAddress'] = ''
        doc['NetworkSettings']['Networks'] = {'aaa': {'IPAddress': '10.0.9.9'}, 'appnet': {'IPAddress': '10.0.5.5'}}
        assert container_from_inspect(doc)['ip'] == '10.0.5.5'
        del doc['NetworkSettings']['Networks']['appnet']
        assert container_from_inspect(doc)['ip'] == '10.0.9.9'

    def test_paused_container_counts_as_not_running(self):
        doc = inspect_doc(State={'Running': True, 'Paused': True, 'Status': 'paused'})
        desc = container_from_inspect(doc)
        assert desc['running'] is False
        assert container_services(desc, OPTS).services == []
        doc['State']['Paused'] = False
        assert container_from_inspect(doc)['running'] is True

    def test_host_network(self):
        doc = inspect_doc(HostConfig={'NetworkMode': 'host'})
        doc['NetworkSettings'] = {'Ports': {}, 'IPAddress': '', 'Networks': {'host': {'IPAddress': ''}}}
        desc = container_from_inspect(doc)
        assert desc['ip'] is None
        result = container_services(desc, OPTS)
        assert [(s.name, s.port) for s in result.services] == [('centos-8000', 8000), ('centos-9000', 9000)]

    def test_health_and_state(self):
        doc = inspect_doc(State={'Running': True, 'Health': {'Status': 'starting'}})
        assert container_from_inspect(doc)['health'] == 'starting'
        assert container_services(container_from_inspect(doc), OPTS).services == []
        doc['State']['Health']['Status'] = 'healthy'
        assert names(container_services(container_from_inspect(doc), OPTS)) == ['centos']
        stopped = container_from_inspect(inspect_doc(State={'Running': False}))
        assert stopped['running'] is False

    def test_sparse_document(self):
        desc = container_from_inspect({'Name': '/bare', 'Config': {'Labels': None, 'Env': None},
                                       'NetworkSettings': {'Ports': None}})
        assert desc['labels'] == {} and desc['env'] == [] and desc['ports'] == []
        assert reasons(container_services(desc, OPTS)) == ['no exposed or published ports']
        with pytest.raises(ValueError):
            container_from_inspect(None)


class TestPublishedBackend:
    def test_reads_current_binding(self):
        desc = container_from_inspect(inspect_doc())
        assert published_backend(desc, 8000, advertise_ip=NODE) == Backend(NODE, 32771)
        moved = inspect_doc()
        moved['NetworkSettings']['Ports']['8000/tcp'] = [{'HostIp': '0.0.0.0', 'HostPort': '40001'}]
        assert published_backend(container_from_inspect(moved), 8000, advertise_ip=NODE) == \
            Backend(NODE, 40001)

    def test_errors(self):
        desc = container_from_inspect(inspect_doc())
        with pytest.raises(ValueError, match='not published'):
            published_backend(desc, 9000, advertise_ip=NODE)
        with pytest.raises(ValueError, match='has no port 7000/tcp'):
            published_backend(desc, 7000, advertise_ip=NODE)
        with pytest.raises(ValueError, match='no address to advertise'):
            published_backend(desc, 8000)
        loop = container(ports=[published(6379, 49155, host_ip='127.0.0.1')])
        with pytest.raises(ValueError, match='loopback'):
            published_backend(loop, 6379, advertise_ip=NODE)

    def test_specific_binding_and_host_network(self):
        desc = container(ports=[published(6379, 49155, host_ip='10.132.181.182')])
        assert published_backend(desc, 6379, advertise_ip=NODE) == Backend('10.132.181.182', 49155)
        host = container(network_mode='host', ports=[unpublished(6379)])
        assert published_backend(host, 6379, advertise_ip=NODE) == Backend(NODE, 6379)
