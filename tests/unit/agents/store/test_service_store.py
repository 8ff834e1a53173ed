# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service store interface: the in-memory backend, the daemons on it, and the choice of backend.

The etcd backend is exercised by test_registrator.py, test_ambassador.py and test_discover.py
(an EtcdClient over an in-memory etcd) and by the integration tests (a real etcd).
"""

from __future__ import annotations

import argparse
import threading

import pytest

from etcdfleet_agents.daemons import announcer, registrator
from etcdfleet_agents.runtime import SettingsError
from etcdfleet_agents.store import BACKENDS, STORE_ERRORS, open_store
from etcdfleet_agents.store.etcd import EtcdServiceStore
from etcdfleet_agents.store.memory import MemoryServiceStore, MemoryStoreDown
from registrator_fakes import FakeDocker

NODE = '10.0.0.5'
KEY = '/services/nginx/node-1:web1:80'


def make_registrator(store, docker, *argv):
    args = registrator.add_arguments(argparse.ArgumentParser(), {}).parse_args(
        ['--hostname', 'node-1', '--advertise-ip', NODE] + list(argv))
    return registrator.Registrator(args=args, environ={}, store=store, docker_factory=lambda: docker)


def test_backends_are_chosen_by_setting():
    assert BACKENDS['etcd'] is EtcdServiceStore
    assert isinstance(open_store({'ETCDFLEET_STORE': 'memory'}), MemoryServiceStore)
    store = open_store({'ETCDFLEET_ENDPOINTS': 'http://127.0.0.1:9'})
    assert isinstance(store, EtcdServiceStore) and store.endpoints == ['http://127.0.0.1:9']
    with pytest.raises(SettingsError, match="ETCDFLEET_STORE must be one of etcd, memory, got 'consul'"):
        open_store({'ETCDFLEET_STORE': 'consul'})
    assert MemoryStoreDown in STORE_ERRORS


def test_registrator_on_the_memory_store():
    store = MemoryServiceStore({'/services/nginx/node-1:gone:80': '10.0.0.5:1',
                                '/services/nginx/node-2:web1:80': '10.0.0.6:1'})
    docker = FakeDocker()
    cid = docker.add('web1', ports=[('80/tcp', 32768)])
    agent = make_registrator(store, docker)
    plan = agent.resync('test')
    assert plan.delete == ['/services/nginx/node-1:gone:80']
    assert store.values() == {KEY: '10.0.0.5:32768', '/services/nginx/node-2:web1:80': '10.0.0.6:1'}
    # a key lost meanwhile (expired) is written again by the next keepalive
    store.expire(KEY)
    assert agent.keepalive() == [KEY]
    assert store.values()[KEY] == '10.0.0.5:32768'
    # a second resync writes nothing: the keys are on the agent's lease already
    revision = store.revision
    agent.resync('again')
    assert store.revision == revision
    docker.update(cid, running=False)
    agent.handle_container(cid, 'stop')
    assert store.values() == {'/services/nginx/node-2:web1:80': '10.0.0.6:1'}


def test_registrator_without_ttl_writes_plain_keys():
    store = MemoryServiceStore()
    docker = FakeDocker()
    docker.add('web1', ports=[('80/tcp', 32768)])
    agent = make_registrator(store, docker, '--ttl', '0', '--deregister-on-stop')
    agent.resync('test')
    assert store.data[KEY].lease is None
    agent.cleanup()
    assert store.values() == {}


def test_announcer_withdraws_only_its_own_value():
    store = MemoryServiceStore()
    docker = FakeDocker()
    cid = docker.add('redis', ports=[('6379/tcp', 49155)])
    args = announcer.add_arguments(argparse.ArgumentParser()).parse_args(
        ['--service', 'redis-A', '--container', cid, '--id', 'redis', '--port', '6379', '--advertise-ip', NODE,
         '--ttl', '0'])
    agent = announcer.Announcer(args=args, environ={}, store=store, docker_factory=lambda: docker)
    assert agent.announce('test') == '{"host": "10.0.0.5", "port": 49155}'
    assert store.values() == {'/services/redis-A/redis': '{"host": "10.0.0.5", "port": 49155}'}
    store.put('/services/redis-A/redis', '{"host": "10.0.0.9", "port": 1}')  # the service moved
    agent.cleanup()
    assert store.values() == {'/services/redis-A/redis': '{"host": "10.0.0.9", "port": 1}'}


def test_memory_store_failures_and_watch():
    store = MemoryServiceStore({'/s/a/1': 'x'})
    watch = store.watch('/s')
    assert watch.load() == {'/s/a/1': 'x'}
    assert watch.wait(timeout=0.05) == 0
    store.put('/s/a/2', 'y')
    store.delete('/s/a/1')
    assert watch.wait(timeout=1) == 2 and watch.values == {'/s/a/2': 'y'}
    assert store.delete('/s/a/2', prev_value='other') is False
    threading.Timer(0.05, watch.interrupt).start()
    assert watch.wait(timeout=5) is None
    store.down = True
    with pytest.raises(MemoryStoreDown):
        store.read('/s')


def test_an_unknown_backend_is_one_line_and_exit_2(capsys):
    from etcdfleet_agents import registrator as entry
    code = entry.cli(['--once', '--hostname', 'n1', '--advertise-ip', NODE], environ={'ETCDFLEET_STORE': 'consul'})
    assert code == 2
    assert capsys.readouterr().err == \
        "registrator: ETCDFLEET_STORE must be one of etcd, memory, got 'consul'\n"


def test_memory_keeper_leaves_a_key_another_writer_took(caplog):
    store = MemoryServiceStore()
    docker = FakeDocker()
    docker.add('web1', ports=[('80/tcp', 32768)])
    agent = make_registrator(store, docker)
    agent.resync('test')
    store.put(KEY, '10.0.0.9:1')
    assert agent.keepalive() == []
    assert store.values()[KEY] == '10.0.0.9:1'
    assert KEY not in agent.keeper
    assert 'another writer now holds: %s' % KEY in caplog.text
