# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Both etcd backends implement the whole EtcdBackend interface, and the client reaches
them only through it: API differences are capabilities, not version checks."""

from __future__ import annotations

import inspect

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_backend import EtcdBackend
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_v2 import V2Backend
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_v3 import V3Backend
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    BACKENDS,
    EtcdClient,
    EtcdUnsupported,
)

INTERFACE = sorted(EtcdBackend.__abstractmethods__)


def test_the_interface_covers_keys_watches_leases_and_the_cluster():
    assert set(INTERFACE) >= {
        'get', 'get_many', 'revision', 'set', 'set_many', 'write_each', 'refresh', 'mkdir', 'delete',
        'watch', 'close_watch', 'grant', 'keepalive', 'revoke', 'members', 'status', 'health', 'version',
        'connect', 'check_available', 'close'}


@pytest.mark.parametrize('backend_class', [V2Backend, V3Backend], ids=['v2', 'v3'])
def test_backend_implements_every_method_of_the_interface(backend_class):
    assert issubclass(backend_class, EtcdBackend)
    assert not getattr(backend_class, '__abstractmethods__', None), 'abstract left: %s' % sorted(
        backend_class.__abstractmethods__)
    for name in INTERFACE:
        wanted = inspect.signature(getattr(EtcdBackend, name))
        actual = inspect.signature(getattr(backend_class, name))
        assert list(actual.parameters) == list(wanted.parameters), (backend_class.__name__, name)
        for param in wanted.parameters.values():
            assert actual.parameters[param.name].default == param.default, (backend_class.__name__, name, param)
    for flag in ('supports_directories', 'supports_leases'):
        assert isinstance(getattr(backend_class, flag), bool)


def test_an_incomplete_backend_cannot_be_made():
    class Incomplete(EtcdBackend):
        def get(self, key, recursive=False):
            return None

    with pytest.raises(TypeError):
        Incomplete()  # pylint: disable=abstract-class-instantiated


def test_the_client_picks_the_backend_and_its_capabilities_by_api_version():
    assert BACKENDS == {'v2': V2Backend, 'v3': V3Backend}
    v3 = EtcdClient(['http://a:1'], api_version='v3', environ={}, backend_factory=lambda endpoint: None)
    assert v3.supports_leases and not v3.supports_directories
    v2 = EtcdClient(['http://a:1'], api_version='v2', environ={}, backend_factory=lambda endpoint: None)
    assert v2.supports_directories and not v2.supports_leases


def test_v2_backend_refuses_lease_operations_clearly():
    pytest.importorskip('etcd')
    backend = V2Backend('http://fake:2379', 5, client=object())
    for call in (lambda: backend.grant(10), lambda: backend.keepalive(7), lambda: backend.revoke(7),
                 lambda: backend.set('/k', 'v', lease=7)):
        with pytest.raises(EtcdUnsupported, match='api_version=v3'):
            call()
