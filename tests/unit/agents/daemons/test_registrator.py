# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registrator agent against an in-memory etcd and a fake Docker API."""

from __future__ import annotations

import argparse
import json
import threading
import time

import pytest

from etcdfleet_agents import registrator
from etcdfleet_agents.daemons import registrator as reg
from etcdfleet_agents.services import options
from etcdfleet_agents.store.etcd import EtcdServiceStore
from registrator_fakes import FakeDocker, FakeStore

NODE = '10.0.0.5'


def make_agent(store, docker, *argv, environ=None):
    parser = reg.add_arguments(argparse.ArgumentParser(), environ or {})
    args = parser.parse_args(['--hostname', 'node-1', '--advertise-ip', NODE] + list(argv))
    return reg.Registrator(args=args, environ={}, store=EtcdServiceStore(store.client()), docker_factory=lambda: docker)


def wait_for(condition, timeout=5.0, what='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError('timed out waiting for %s' % what)


# -- settings ------------------------------------------------------------------------------------

def test_settings_from_environment():
    environ = {'ETCDFLEET_REGISTRATOR_PREFIX': 'svc//x/', 'ETCDFLEET_REGISTRATOR_TTL': '12',
               'ETCDFLEET_REGISTRATOR_RESYNC': '0', 'ETCDFLEET_REGISTRATOR_INTERNAL': 'true',
               'ETCDFLEET_REGISTRATOR_EXPLICIT': 'yes', 'ETCDFLEET_REGISTRATOR_VALUE_STYLE': 'json',
               'ETCDFLEET_REGISTRATOR_ADVERTISE_IP': '10.1.2.3', 'ETCDFLEET_REGISTRATOR_HOSTNAME': 'n9'}
    args = reg.add_arguments(argparse.ArgumentParser(), environ).parse_args([])
    assert (args.prefix, args.ttl, args.resync, args.internal, args.explicit, args.value_style,
            args.advertise_ip, args.hostname) == ('/svc/x', 12, 0, True, True, 'json', '10.1.2.3', 'n9')
    args = reg.add_arguments(argparse.ArgumentParser(), {}).parse_args([])
    assert (args.prefix, args.ttl, args.resync, args.internal, args.value_style, args.deregister_on_stop) == \
        ('/services', 30, 60, False, 'plain', False)


@pytest.mark.parametrize('argv, environ, fragment', [
    (['--ttl', '1'], {}, 'ttl 1 leaves no time'),
    (['--ttl', '-3'], {}, 'expected 0 or more seconds'),
    ([], {'ETCDFLEET_REGISTRATOR_TTL': 'soon'}, "expected a whole number of seconds, got 'soon'"),
    (['--advertise-ip', '127.0.0.1'], {}, '127.0.0.1 cannot be reached from other nodes'),
    (['--advertise-ip', 'node1'], {}, "'node1' is not an IP address"),
    (['--prefix', '/a/../b'], {}, "invalid segment '..'"),
    ([], {'ETCDFLEET_REGISTRATOR_VALUE_STYLE': 'xml'}, "expected one of plain, json, got 'xml'"),
])
def test_bad_settings_are_named(argv, environ, fragment, capsys):
    with pytest.raises(SystemExit) as exc:
        reg.add_arguments(argparse.ArgumentParser(), environ).parse_args(argv)
    assert exc.value.code == 2
    assert fragment in capsys.readouterr().err


def test_cli_reports_unusable_settings_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(reg, 'detect_advertise_ip', lambda endpoints: None)
    environ = {'ETCDFLEET_ENDPOINTS': 'http://127.0.0.1:9', 'ETCDFLEET_API_VERSION': 'v3'}
    code = registrator.cli(['--once', '--hostname', 'n1'], environ=environ)
    assert code == 2
    err = capsys.readouterr().err
    assert err == 'registrator: cannot find an address to advertise: set --advertise-ip\n'


def test_advertise_ip_defaults_to_the_address_towards_etcd(monkeypatch):
    asked = []

    def route(host, port=2379):
        asked.append(host)
        return {'10.0.0.1': '127.0.0.1', '192.0.2.1': '10.9.8.7'}.get(host, '10.20.0.4')

    monkeypatch.setattr(options, 'route_source_address', route)
    assert options.detect_advertise_ip(['http://10.30.0.1:2379']) == '10.20.0.4'
    # a loopback answer says nothing about the cluster network: the default route decides
    asked[:] = []
    assert options.detect_advertise_ip(['http://10.0.0.1:2379']) == '10.9.8.7'
    assert asked == ['10.0.0.1', '192.0.2.1']
    monkeypatch.setattr(options, 'route_source_address', lambda host, port=2379: '127.0.0.1')
    assert options.detect_advertise_ip(['http://127.0.0.1:2379']) is None
    store = FakeStore('v3')
    args = reg.add_arguments(argparse.ArgumentParser(), {}).parse_args([])
    with pytest.raises(ValueError, match='set --advertise-ip'):
        reg.Registrator(args=args, environ={}, store=EtcdServiceStore(store.client()), docker_factory=FakeDocker)
    # internal mode needs no node address
    args = reg.add_arguments(argparse.ArgumentParser(), {}).parse_args(['--internal'])
    assert reg.Registrator(args=args, environ={}, store=EtcdServiceStore(store.client()), docker_factory=FakeDocker).options.internal


# -- one container at a time ---------------------------------------------------------------------

def test_start_stop_die_destroy(store, docker):
    agent = make_agent(store, docker)
    cid = docker.add('web1', ports=[('80/tcp', 32768)])
    agent.handle_container(cid, 'start')
    assert store.values() == {'/services/nginx/node-1:web1:80': '10.0.0.5:32768'}
    docker.update(cid, running=False)
    agent.handle_container(cid, 'stop')
    assert store.values() == {}
    # die after stop: nothing left to do, nothing written
    writes = len(store.writes())
    agent.handle_container(cid, 'die')
    assert len(store.writes()) == writes
    docker.update(cid, running=True)
    agent.handle_container(cid, 'start')
    docker.remove(cid)
    agent.handle_container(cid, 'destroy')
    assert store.values() == {}


def test_deregister_host_deletes_this_hosts_keys_only_and_asks_no_docker(store, docker):
    agent = make_agent(store, docker)
    cid = docker.add('web1', ports=[('80/tcp', 32768)])
    agent.handle_container(cid, 'start')
    client = store.client()
    client.set('/services/nginx/node-2:web1:80', '10.0.0.6:32768')
    client.set('/services/echo/announced', '10.0.0.5:8000')  # not registrator-style: never ours to remove
    leaving = make_agent(store, NoDocker(), '--deregister-host')
    assert leaving.args.once
    leaving.run_once()
    assert store.values() == {'/services/nginx/node-2:web1:80': '10.0.0.6:32768',
                              '/services/echo/announced': '10.0.0.5:8000'}


class NoDocker(object):
    """A Docker API that must not be asked anything."""

    def __getattr__(self, name):
        raise AssertionError('Docker asked for %s' % name)


def test_naming_rules_through_the_agent(store, docker):
    agent = make_agent(store, docker)
    cids = [
        docker.add('two', image='registry:5000/team/app:2', ports=[('80/tcp', 40080), ('443/tcp', 40443)]),
        docker.add('lbl', ports=[('80/tcp', 40001)], labels={'SERVICE_NAME': 'from-label'},
                   env=['SERVICE_NAME=from-env']),
        docker.add('env', ports=[('80/tcp', 40002)], env=['SERVICE_NAME=from-env']),
        docker.add('dns', image='dnsmasq', ports=[('53/udp', 40053)]),
        docker.add('ign', ports=[('80/tcp', 40003)], env=['SERVICE_IGNORE=1']),
        docker.add('noport', ports=[('80/tcp', None)]),
        docker.add('bare', ports=[]),
        docker.add('p8080', ports=[('80/tcp', 40004), ('8080/tcp', 40005)], labels={'SERVICE_8080_NAME': 'admin'}),
    ]
    for cid in cids:
        agent.handle_container(cid, 'start')
    assert store.values() == {
        '/services/app-80/node-1:two:80': '10.0.0.5:40080',
        '/services/app-443/node-1:two:443': '10.0.0.5:40443',
        '/services/from-label/node-1:lbl:80': '10.0.0.5:40001',
        '/services/from-env/node-1:env:80': '10.0.0.5:40002',
        '/services/dnsmasq/node-1:dns:53:udp': '10.0.0.5:40053',
        '/services/nginx-80/node-1:p8080:80': '10.0.0.5:40004',
        '/services/admin/node-1:p8080:8080': '10.0.0.5:40005',
    }


def test_explicit_internal_and_json_modes(store, docker):
    docker.add('named', ports=[('80/tcp', 40001)], env=['SERVICE_NAME=web'], ip='172.17.0.9')
    docker.add('anon', ports=[('80/tcp', 40002)])
    agent = make_agent(store, docker, '--explicit', '--internal', '--value-style', 'json')
    agent.resync('test')
    assert {k: json.loads(v) for k, v in store.values().items()} == {
        '/services/web/node-1:named:80': {'host': '172.17.0.9', 'port': 80}}


def test_health_gating(store, docker):
    agent = make_agent(store, docker)
    cid = docker.add('api', ports=[('80/tcp', 32000)], health='starting')
    agent.handle_container(cid, 'start')
    assert store.values() == {}
    docker.update(cid, health='healthy')
    agent.handle_container(cid, 'health_status: healthy')
    assert store.values() == {'/services/nginx/node-1:api:80': '10.0.0.5:32000'}
    docker.update(cid, health='unhealthy')
    agent.handle_container(cid, 'health_status: unhealthy')
    assert store.values() == {}
    # --ignore-health registers it anyway
    agent = make_agent(store, docker, '--ignore-health')
    agent.handle_container(cid, 'start')
    assert list(store.values()) == ['/services/nginx/node-1:api:80']


def test_restart_on_a_new_port_moves_the_key(store, docker):
    agent = make_agent(store, docker)
    cid = docker.add('web1', ports=[('80/tcp', 32768)])
    agent.handle_container(cid, 'start')
    docker.update(cid, ports=[('80/tcp', 32999)])
    agent.handle_container(cid, 'die')     # inspected after the restart already: level-triggered
    assert store.values() == {'/services/nginx/node-1:web1:80': '10.0.0.5:32999'}
    agent.handle_container(cid, 'start')
    assert store.values() == {'/services/nginx/node-1:web1:80': '10.0.0.5:32999'}
    assert [e for e in store.writes() if e[0] == 'set'] == [
        ('set', '/services/nginx/node-1:web1:80', '10.0.0.5:32768'),
        ('set', '/services/nginx/node-1:web1:80', '10.0.0.5:32999')]


def test_rename_replaces_the_key(store, docker):
    agent = make_agent(store, docker)
    cid = docker.add('old', ports=[('80/tcp', 32768)])
    agent.handle_container(cid, 'start')
    docker.update(cid, name='new')
    agent.handle_container(cid, 'rename')
    assert store.values() == {'/services/nginx/node-1:new:80': '10.0.0.5:32768'}


def test_one_log_line_per_action(store, docker, caplog):
    caplog.set_level('INFO', logger='registrator')
    agent = make_agent(store, docker)
    cid = docker.add('web1', ports=[('80/tcp', 32768), ('81/tcp', None)])
    agent.handle_container(cid, 'start')
    docker.update(cid, running=False)
    agent.handle_container(cid, 'die')
    lines = [r.getMessage() for r in caplog.records if r.name == 'registrator']
    assert lines[0] == 'container web1: not registered: port 81/tcp: port is not published on the host'
    assert lines[1] == 'registered /services/nginx/node-1:web1:80 = 10.0.0.5:32768 (container web1: start)'
    assert lines[-1] == 'deregistered /services/nginx/node-1:web1:80 (container web1: die)'
    assert len(lines) == 3


# -- resync ---------------------------------------------------------------------------------------

def test_resync_registers_running_and_removes_only_own_stale_keys(store, docker):
    client = store.client()
    client.set('/services/nginx/node-1:gone:80', '10.0.0.5:1')           # stopped while no agent ran
    client.set('/services/nginx/node-1:web1:80', '10.0.0.5:1')           # port changed meanwhile
    client.set('/services/nginx/node-2:web1:80', '10.0.0.6:32768')       # another node's
    client.set('/services/nginx/fixed-id', '10.0.0.5:2')                 # not provably ours
    client.set('/elsewhere/node-1:gone:80', 'x')                         # outside the prefix
    docker.add('web1', ports=[('80/tcp', 32768)])
    docker.add('off', ports=[('80/tcp', 32769)], running=False)
    agent = make_agent(store, docker)
    agent.resync('start')
    assert store.values() == {
        '/services/nginx/node-1:web1:80': '10.0.0.5:32768',
        '/services/nginx/node-2:web1:80': '10.0.0.6:32768',
        '/services/nginx/fixed-id': '10.0.0.5:2',
        '/elsewhere/node-1:gone:80': 'x',
    }
    writes = len(store.writes())
    agent.resync('periodic')
    assert len(store.writes()) == writes, 'a second resync must write nothing'


def test_restarted_agent_takes_over_and_cleans_up(store, docker):
    a = docker.add('a', ports=[('80/tcp', 32001)])
    b = docker.add('b', ports=[('80/tcp', 32002)])
    first = make_agent(store, docker, '--ttl', '30')
    first.resync('start')
    # the agent is SIGKILLed; meanwhile b stops
    docker.update(b, running=False)
    second = make_agent(store, docker, '--ttl', '30')
    writes = len(store.writes())
    second.resync('start')
    assert store.values() == {'/services/nginx/node-1:a:80': '10.0.0.5:32001'}
    new = store.writes()[writes:]
    assert ('delete', '/services/nginx/node-1:b:80', '10.0.0.5:32002') in new
    if store.api_version == 'v2':
        assert len(new) == 1, 'v2: the unchanged key is refreshed in place, not rewritten'
    else:
        assert new.count(('set', '/services/nginx/node-1:a:80', '10.0.0.5:32001')) == 1
    # the first agent's keys live on only through the second one's keepalives
    for dummy in range(4):
        store.advance(10)
        second.keepalive()
    assert list(store.values()) == ['/services/nginx/node-1:a:80']
    assert a in second.by_container


def test_keys_expire_when_the_agent_is_gone(store, docker):
    docker.add('web1', ports=[('80/tcp', 32768)])
    agent = make_agent(store, docker, '--ttl', '9')
    agent.resync('start')
    writes = len(store.writes())
    for dummy in range(9):
        store.advance(3)
        assert agent.keepalive() == []
    assert list(store.values()) == ['/services/nginx/node-1:web1:80']
    assert len(store.writes()) == writes, 'renewals must not wake watchers'
    store.advance(9)
    assert store.values() == {}


def test_keys_lost_during_an_etcd_outage_come_back(store, docker, caplog):
    docker.add('web1', ports=[('80/tcp', 32768)])
    agent = make_agent(store, docker, '--ttl', '9')
    agent.resync('start')
    store.advance(20)
    assert store.values() == {}
    assert agent.keepalive() == ['/services/nginx/node-1:web1:80']
    assert store.values() == {'/services/nginx/node-1:web1:80': '10.0.0.5:32768'}
    assert 're-registered 1 key(s) that had expired' in caplog.text


def test_ttl_zero_writes_plain_keys(store, docker):
    docker.add('web1', ports=[('80/tcp', 32768)])
    agent = make_agent(store, docker, '--ttl', '0')
    agent.run_once()
    store.advance(3600)
    assert store.values() == {'/services/nginx/node-1:web1:80': '10.0.0.5:32768'}
    assert agent.keeper is None


def test_conflicting_ids_are_reported(store, docker, caplog):
    docker.add('a', ports=[('80/tcp', 32001)], labels={'SERVICE_ID': 'same'})
    docker.add('b', ports=[('80/tcp', 32002)], labels={'SERVICE_ID': 'same'})
    make_agent(store, docker).resync('start')
    assert store.values() == {'/services/nginx/same': '10.0.0.5:32001'}
    assert 'conflict: /services/nginx/same is wanted by a port 80 and by b port 80' in caplog.text


# -- stop -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('deregister', [False, True])
def test_clean_stop(store, docker, deregister, caplog):
    caplog.set_level('INFO', logger='registrator')
    docker.add('web1', ports=[('80/tcp', 32768)])
    docker.add('web2', ports=[('80/tcp', 32769)])
    store.client().set('/services/nginx/node-2:x:80', '10.0.0.6:1')
    agent = make_agent(store, docker, *(['--deregister-on-stop'] if deregister else []))
    agent.resync('start')
    agent.cleanup()
    if deregister:
        assert store.values() == {'/services/nginx/node-2:x:80': '10.0.0.6:1'}
        assert 'deregistered 2 key(s) on stop' in caplog.text
    else:
        assert len(store.values()) == 3
        assert 'leaving 2 key(s) to expire within 30s' in caplog.text
        store.advance(31)
        assert store.values() == {'/services/nginx/node-2:x:80': '10.0.0.6:1'}


# -- the event loop -------------------------------------------------------------------------------

class Running(object):
    """serve() in a thread, stopped and joined at the end."""

    def __init__(self, agent):
        self.agent = agent
        self.thread = threading.Thread(target=agent.retrying, args=(agent.serve,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.agent

    def __exit__(self, *exc_info):
        self.agent.stop()
        self.thread.join(5)
        assert not self.thread.is_alive(), 'serve() did not return after stop()'
        self.agent.cleanup()


def test_events_drive_registration(store, docker):
    running = docker.add('early', ports=[('80/tcp', 31000)])
    agent = make_agent(store, docker, '--resync', '0')
    with Running(agent):
        wait_for(lambda: '/services/nginx/node-1:early:80' in store.values(), what='initial resync')
        cid = docker.add('web1', ports=[('80/tcp', 32768)])
        docker.emit(cid, 'start')
        wait_for(lambda: '/services/nginx/node-1:web1:80' in store.values(), what='start event')
        docker.update(running, running=False)
        docker.emit(running, 'die')
        wait_for(lambda: '/services/nginx/node-1:early:80' not in store.values(), what='die event')


def test_docker_reconnect_catches_up(store, docker, caplog, monkeypatch):
    caplog.set_level('INFO', logger='registrator')
    monkeypatch.setattr(reg.Backoff, 'next_delay', lambda self: 0.05)
    agent = make_agent(store, docker, '--resync', '0')
    with Running(agent):
        wait_for(lambda: docker.streams, what='event stream')
        stream_count = len(docker.streams)
        # Docker restarts: the stream ends, the engine is away for a while, a container starts
        docker.down = True
        docker.end_stream()
        time.sleep(0.3)
        cid = docker.add('during', ports=[('80/tcp', 32100)])
        docker.down = False
        wait_for(lambda: '/services/nginx/node-1:during:80' in store.values(), what='resync after reconnect')
        # the resync may land before the new event stream is open: wait for it, then count
        wait_for(lambda: len(docker.streams) > stream_count, what='a new event stream')
        assert len(docker.streams) == stream_count + 1
        # and events flow again on the new stream
        docker.update(cid, running=False)
        docker.emit(cid, 'die')
        wait_for(lambda: store.values() == {}, what='event on the new stream')
    assert 'Docker event stream ended; reconnecting' in caplog.text
    assert 'reconnected to Docker events' in caplog.text
    assert caplog.text.count('Docker unreachable') == 1, 'one line per outage, not per retry'


def test_event_during_an_etcd_outage_is_caught_up(store, docker, monkeypatch):
    monkeypatch.setattr(reg.Backoff, 'next_delay', lambda self: 0.05)
    cid = docker.add('web1', ports=[('80/tcp', 32768)])
    agent = make_agent(store, docker, '--resync', '0')
    with Running(agent):
        wait_for(store.values, what='initial resync')
        store.down = True
        docker.update(cid, running=False)
        docker.emit(cid, 'die')
        wait_for(lambda: agent.need_resync, what='failure noticed')
        time.sleep(0.2)
        store.down = False
        wait_for(lambda: store.values() == {}, what='catch-up after etcd returned')


def test_keepalive_failure_then_recovery(store, docker, monkeypatch):
    monkeypatch.setattr(reg.Backoff, 'next_delay', lambda self: 0.05)
    docker.add('web1', ports=[('80/tcp', 32768)])
    agent = make_agent(store, docker, '--ttl', '2', '--resync', '0')
    with Running(agent):
        wait_for(store.values, what='initial resync')
        store.down = True
        time.sleep(1.0)
        store.advance(5)      # etcd was away for longer than the TTL
        store.down = False
        wait_for(lambda: store.values() == {'/services/nginx/node-1:web1:80': '10.0.0.5:32768'},
                 what='keys written again')


def test_no_renewal_while_docker_is_unreachable(store, docker, caplog, monkeypatch):
    caplog.set_level('INFO', logger='registrator')
    monkeypatch.setattr(reg.Backoff, 'next_delay', lambda self: 0.05)
    docker.add('web1', ports=[('80/tcp', 32768)])
    gone = docker.add('web2', ports=[('80/tcp', 32769)])
    agent = make_agent(store, docker, '--ttl', '2', '--resync', '0')
    with Running(agent):
        wait_for(lambda: len(store.values()) == 2, what='initial resync')
        docker.down = True
        docker.end_stream()
        wait_for(lambda: 'no longer refreshing 2 key(s)' in caplog.text, what='the outage noticed')
        store.advance(3)      # longer than the TTL: nothing may renew or write the keys again
        time.sleep(3 * agent.keepalive_interval)
        assert store.values() == {}
        docker.remove(gone)
        docker.down = False
        wait_for(lambda: store.values() == {'/services/nginx/node-1:web1:80': '10.0.0.5:32768'},
                 what='catch-up after Docker returned')
        store.advance(1.5)
        time.sleep(2 * agent.keepalive_interval)
        store.advance(1.5)    # renewed again: alive past the TTL
        assert list(store.values()) == ['/services/nginx/node-1:web1:80']
    assert caplog.text.count('no longer refreshing') == 1


def test_stop_is_prompt(store, docker):
    agent = make_agent(store, docker, '--ttl', '300', '--resync', '3000')
    thread = threading.Thread(target=agent.retrying, args=(agent.serve,), daemon=True)
    thread.start()
    wait_for(lambda: docker.streams, what='event stream')
    started = time.monotonic()
    agent.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2
    agent.cleanup()
    wait_for(lambda: not agent.events.is_alive(), what='event thread to end')
