# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fixtures of the integration tests: real etcd servers on loopback.

One plain etcd (v2 API enabled) serves the whole session, for both API
versions (their key spaces are separate); every test works below its own
key prefix. TLS and authentication tests start their own servers.
"""

from __future__ import annotations

import os
import re
import sys
import uuid

import pytest

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from etcd_server import EtcdServer, TlsMaterial, etcd_binary  # noqa: E402 pylint: disable=wrong-import-position
from integration_helpers import Oracle, PlaybookRunner  # noqa: E402 pylint: disable=wrong-import-position
from haproxy_harness import Backend  # noqa: E402 pylint: disable=wrong-import-position

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient  # noqa: E402 pylint: disable=wrong-import-position

API_VERSIONS = ('v2', 'v3')


@pytest.fixture(scope='session')
def etcd_server(tmp_path_factory):
    if etcd_binary() is None:
        pytest.fail('the etcd binary is not installed (apt-get install etcd-server, or set ETCD_BINARY)')
    server = EtcdServer(name='it-main', workdir=str(tmp_path_factory.mktemp('etcd-main')))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def tls_material(tmp_path_factory):
    pytest.importorskip('cryptography')
    return TlsMaterial.create(str(tmp_path_factory.mktemp('tls')))


@pytest.fixture(scope='session')
def tls_server(tls_material, tmp_path_factory):
    server = EtcdServer(name='it-tls', tls=tls_material, client_cert_auth=True,
                        workdir=str(tmp_path_factory.mktemp('etcd-tls')))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=API_VERSIONS)
def api(request):
    return request.param


@pytest.fixture
def oracle(etcd_server, api):
    return Oracle(etcd_server, api)


@pytest.fixture
def client(etcd_server, api):
    """An EtcdClient on the session server with the API under test."""
    with EtcdClient(endpoints=[etcd_server.url], api_version=api) as etcd:
        yield etcd


@pytest.fixture
def backends(tmp_path):
    """A factory: backends(name) starts an HTTP server on loopback answering ``name``."""
    started = []

    def make(name):
        backend = Backend(name, str(tmp_path)).start()
        started.append(backend)
        return backend
    yield make
    for backend in started:
        backend.stop()


@pytest.fixture
def prefix(request, api):
    name = re.sub(r'[^A-Za-z0-9_-]+', '-', request.node.name).strip('-')
    return '/it/%s-%s' % (name, uuid.uuid4().hex[:6])


@pytest.fixture(scope='session')
def runner(tmp_path_factory):
    # tests/conftest.py puts the collection on ANSIBLE_COLLECTIONS_PATH
    return PlaybookRunner(str(tmp_path_factory.mktemp('playbooks')), os.environ['ANSIBLE_COLLECTIONS_PATH'])


@pytest.fixture
def defaults(etcd_server, api):
    """module_defaults for the etcd group: the session server and the API under test."""
    return {'endpoints': [etcd_server.url], 'api_version': api}


@pytest.fixture
def shadow_etcd_lib(tmp_path):
    """A PYTHONPATH directory whose ``etcd`` package fails to import (python-etcd missing)."""
    package = tmp_path / 'shadow' / 'etcd'
    package.mkdir(parents=True)
    (package / '__init__.py').write_text("raise ImportError('No module named etcd')\n")
    return str(tmp_path / 'shadow')


os.environ.setdefault('ANSIBLE_DEPRECATION_WARNINGS', '0')
