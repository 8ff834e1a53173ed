# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ambassador's settings and the announcer's decisions, on an in-memory etcd and Docker.

The forwarding itself (etcd -> HAProxy -> backends) and the announcer against Docker's event
stream are tested on the real things in tests/integration/test_ambassador.py.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import pytest

from etcdfleet_agents import announce
from etcdfleet_agents.daemons import announcer
from etcdfleet_agents.daemons.ambassador import Ambassador, ambassador_settings, parse_listen
from etcdfleet_agents.daemons.discover import load_settings
from etcdfleet_agents.haproxy.render import build_context
from etcdfleet_agents.runtime import SettingsError
from etcdfleet_agents.services.catalog import build_catalog
from etcdfleet_agents.store.etcd import EtcdServiceStore

NODE = '10.0.0.5'


@pytest.mark.parametrize('text, expected', [
    ('6379', ('127.0.0.1', 6379)),
    ('0.0.0.0:80', ('0.0.0.0', 80)),
    ('*:8080', ('*', 8080)),
    ('[::1]:6379', ('::1', 6379)),
    ('::1:6379', ('::1', 6379)),
    (' 172.18.0.1:6379 ', ('172.18.0.1', 6379)),
])
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize('text, fragment', [
    ('', 'listen must be [address:]port'),
    ('localhost:80', "'localhost' is not an IP address"),
    ('127.0.0.1:0', 'port must be a number in 1-65535'),
    ('127.0.0.1:65536', 'port must be a number in 1-65535'),
    ('127.0.0.1:http', 'port must be a number'),
])
def test_parse_listen_names_the_bad_value(text, fragment):
    with pytest.raises(ValueError) as err:
        parse_listen(text)
    assert fragment in str(err.value)


def test_settings_of_one_ambassador():
    settings = load_settings(data=ambassador_settings('redis-A', '127.0.0.1:6379', run_dir='/run/x',
                                                      haproxy={'user': ''}, debounce=0.1))
    assert settings['bind_address'] == '127.0.0.1'
    assert [(e.name, e.port, e.mode) for e in settings['exposure'].services] == [('redis-A', 6379, 'tcp')]
    assert settings['stats']['enabled'] is False
    assert settings['haproxy']['config'] == '/run/x/redis-A-6379/haproxy.cfg'
    assert settings['haproxy']['runtime_socket'] == '/run/x/redis-A-6379/admin.sock'
    assert settings['haproxy']['user'] == ''
    assert settings['status_file'] == '/run/x/redis-A-6379/status.json'
    assert settings['debounce'] == 0.1
    # the template sees one service with the current instances, bound where asked
    catalog = build_catalog([('/services/redis-A/redis.service', '{"host": "10.0.0.7", "port": 49155}'),
                             ('/services/redis-A/other', '10.0.0.8:6379'),
                             ('/services/redis-B/x', '10.0.0.9:6379')])
    context = build_context(settings, catalog, list(settings['exposure'].services))
    assert [s['bind'] for s in context['services']] == ['127.0.0.1:6379']
    assert [srv['address'] for srv in context['services'][0]['servers']] == ['10.0.0.8:6379', '10.0.0.7:49155']


@pytest.mark.parametrize('kwargs, fragment', [
    ({'service': 'a/b', 'listen': '80'}, 'may hold only'),
    ({'service': 'web', 'listen': '80', 'instance': '..'}, 'instance name'),
    ({'service': 'web', 'listen': '80', 'haproxy': {'config': '/tmp/x'}}, 'haproxy.config is set by the ambassador'),
    ({'service': 'web', 'listen': '80', 'mode': 'udp'}, 'must be one of http, tcp'),
])
def test_bad_settings_are_named(kwargs, fragment):
    with pytest.raises((SettingsError, ValueError)) as err:
        load_settings(data=ambassador_settings(**kwargs))
    assert fragment in str(err.value)


def test_haproxy_ending_stops_the_ambassador():
    settings = load_settings(data=ambassador_settings('web', '8080', run_dir='/nonexistent'))
    amb = Ambassador(args=argparse.Namespace(), environ={}, settings=settings)
    assert amb.updater.reload_pending       # the first apply starts HAProxy
    amb.haproxy.on_exit(3)
    assert amb.stopping.is_set()
    assert amb.exit_code == 1


# -- announcer -------------------------------------------------------------------------------------

def make_announcer(store, docker, container, *argv):
    parser = announcer.add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(['--service', 'redis-A', '--container', container, '--port', '6379',
                              '--id', 'redis.service', '--advertise-ip', NODE, '--ttl', '6'] + list(argv))
    return announcer.Announcer(args=args, environ={}, store=EtcdServiceStore(store.client()),
                               docker_factory=lambda: docker)


KEY = '/services/redis-A/redis.service'


def test_announces_the_published_port_and_follows_it(store, docker):
    cid = docker.add('redis.service', ports=[('6379/tcp', 49155)])
    agent = make_announcer(store, docker, cid)
    assert agent.announce('start') == '{"host": "10.0.0.5", "port": 49155}'
    assert json.loads(store.values()[KEY]) == {'host': NODE, 'port': 49155}
    assert 0 < store.ttl_of(KEY) <= 6
    # nothing changed: nothing written
    writes = len(store.writes())
    agent.announce('container start')
    assert len(store.writes()) == writes
    # restarted on another port: announced again, read from Docker
    docker.update(cid, ports=[('6379/tcp', 49200)])
    agent.announce('container start')
    assert json.loads(store.values()[KEY]) == {'host': NODE, 'port': 49200}


def test_keys_are_renewed_without_a_write_and_come_back_after_expiry(store, docker):
    cid = docker.add('redis.service', ports=[('6379/tcp', 49155)])
    agent = make_announcer(store, docker, cid)
    agent.announce('start')
    writes = len(store.writes())
    for dummy in range(4):
        store.advance(2)
        assert agent.keepalive() == []
    assert len(store.writes()) == writes
    assert KEY in store.values()
    store.advance(7)
    assert KEY not in store.values()
    assert agent.keepalive() == [KEY]
    assert KEY in store.values()


@pytest.mark.parametrize('change, reason', [
    (lambda docker, cid: docker.update(cid, running=False), 'is not running'),
    (lambda docker, cid: docker.remove(cid), 'does not exist'),
    (lambda docker, cid: docker.update(cid, ports=[('6379/tcp', None)]), 'is not published on the host'),
])
def test_withdrawn_when_the_container_cannot_be_reached(store, docker, change, reason, caplog):
    cid = docker.add('redis.service', ports=[('6379/tcp', 49155)])
    agent = make_announcer(store, docker, cid)
    agent.announce('start')
    change(docker, cid)
    caplog.set_level('INFO')
    assert agent.announce('container die') is None
    assert KEY not in store.values()
    assert any(reason in r.getMessage() and r.getMessage().startswith('withdrew') for r in caplog.records)


def test_wrong_port_is_said_once(store, docker, caplog):
    cid = docker.add('redis.service', ports=[('80/tcp', 49155)])
    agent = make_announcer(store, docker, cid)
    caplog.set_level('INFO')
    agent.announce('start')
    agent.announce('container start')
    lines = [r.getMessage() for r in caplog.records if 'nothing to announce' in r.getMessage()]
    assert len(lines) == 1 and 'has no port 6379/tcp' in lines[0]
    assert store.values() == {}


def test_stop_leaves_a_key_another_announcer_wrote(store, docker):
    cid = docker.add('redis.service', ports=[('6379/tcp', 49155)])
    agent = make_announcer(store, docker, cid)
    agent.announce('start')
    other = store.client().key_keeper(6)
    other.put(KEY, '{"host": "10.0.0.6", "port": 49999}')
    agent.cleanup()
    assert store.values() == {KEY: '{"host": "10.0.0.6", "port": 49999}'}


def test_serve_follows_docker_events_and_withdraws_on_stop(store, docker):
    cid = docker.add('redis.service', ports=[('6379/tcp', 49155)], running=False)
    agent = make_announcer(store, docker, cid)
    thread = threading.Thread(target=agent.serve, daemon=True)
    thread.start()
    try:
        assert docker.connected.wait(5)
        docker.update(cid, running=True)
        docker.emit(cid, 'start')
        deadline = time.monotonic() + 5
        while KEY not in store.values() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert KEY in store.values()
    finally:
        agent.stop()
        thread.join(5)
    assert not thread.is_alive()
    agent.cleanup()
    assert store.values() == {}


def test_bad_arguments_are_one_line(capsys):
    assert announce.cli(['--service', 'a/b', '--container', 'x', '--port', '80', '--advertise-ip', NODE],
                        environ={'ETCDFLEET_ENDPOINTS': 'http://127.0.0.1:1'}) == 2
    err = capsys.readouterr().err
    assert err.startswith('announce: ') and 'may hold only' in err and 'Traceback' not in err
