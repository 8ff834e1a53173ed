# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ambassador and the announcer as real processes, against a real etcd on loopback, a real
HAProxy (the ambassador's own child) and real HTTP backends; the announcer against this machine's
Docker engine.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

import etcd_server
from etcd_server import free_port
from haproxy_harness import TEMPLATE, children_of, haproxy_binary, http_get
from registrator_helpers import Agent, Containers, docker_available, published_port, wait_for

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient

TTL = 4


@pytest.fixture
def processes():
    made = []

    def track(process):
        made.append(process)
        return process
    yield track
    for process in made:
        if process.process is not None and process.process.poll() is None:
            process.kill()


def ambassador(track, server, api, tmp_path, prefix, service, port, *extra):
    if haproxy_binary() is None:
        pytest.fail('haproxy is not installed (apt-get install haproxy, or set HAPROXY_BINARY)')
    args = ['--service', service, '--listen', '127.0.0.1:%d' % port, '--prefix', prefix,
            '--run-dir', str(tmp_path / 'run'), '--template', TEMPLATE, '--haproxy', haproxy_binary(),
            '--haproxy-user', '', '--haproxy-group', '', '--haproxy-chroot', '', '--haproxy-log', '',
            '--check-inter', '500ms', '--debounce', '0.05', '--max-delay', '0.5'] + list(extra)
    process = Agent([server.url], api, args=args, log_path=str(tmp_path / 'ambassador.log'),
                    module='ambassador', ready='reloaded HAProxy')
    return track(process).start()


def haproxy_workers(amb):
    """PIDs of the workers of the ambassador's HAProxy (its child, the master)."""
    return [worker for master in children_of(amb.process.pid) for worker in children_of(master)]


def answer(port):
    """The body of one request through the ambassador, or None when it fails."""
    try:
        return http_get(port, timeout=2.0)
    except Exception:  # pylint: disable=broad-except
        return None


def answers(port, count):
    return [answer(port) for dummy in range(count)]


def json_value(backend):
    return json.dumps({'host': '127.0.0.1', 'port': backend.port})


def test_follows_the_key_through_moves_deletions_and_garbage(etcd_server, api, client, backends, processes,
                                                             tmp_path, prefix):
    one, two, three = backends('one'), backends('two'), backends('three')
    key = prefix + '/web/web.service'
    client.set(key, json_value(one))
    port = free_port()
    amb = ambassador(processes, etcd_server, api, tmp_path, prefix, 'web', port)
    wait_for(lambda: answer(port) == 'one', 10, what='HAProxy forwarding to one')
    config = open(str(tmp_path / 'run' / ('web-%d' % port) / 'haproxy.cfg')).read()
    assert 'bind 127.0.0.1:%d' % port in config
    assert 'listen stats' not in config

    # the provider moves: the same key gets a new value
    client.set(key, '127.0.0.1:%d' % two.port)
    wait_for(lambda: answer(port) == 'two', 10, what='the move to two')
    # a second provider under the same name: both are used
    client.set(prefix + '/web/web-2.service', json_value(three))
    wait_for(lambda: set(answers(port, 4)) == {'two', 'three'}, 10, what='two and three balanced')

    # garbage: skipped with a warning, the others keep serving
    client.set(prefix + '/web/broken', '{"host": "127.0.0.1"')
    client.set(prefix + '/web/no-port', 'not-an-address')
    amb.wait_log("skipped key '%s/web/broken'" % prefix, timeout=10)
    amb.wait_log("skipped key '%s/web/no-port'" % prefix, timeout=10)
    assert set(answers(port, 4)) == {'two', 'three'}

    # every key deleted: connections are closed at once, the ambassador stays
    client.delete(key)
    client.delete(prefix + '/web/web-2.service')
    wait_for(lambda: answers(port, 2) == [None, None], 10, what='no server left')
    # (a worker of an earlier reload can take a connection until it has exited)
    wait_for(lambda: len(haproxy_workers(amb)) == 1, 10, what="HAProxy's earlier workers gone")
    started = time.monotonic()
    with socket.create_connection(('127.0.0.1', port), timeout=3) as sock:
        sock.sendall(b'GET / HTTP/1.0\r\n\r\n')
        try:
            assert sock.recv(100) == b''
        except ConnectionResetError:
            pass  # closed with the request unread: a reset instead of a clean close
    assert time.monotonic() - started < 2
    assert amb.process.poll() is None

    # announced again (a key that expires: its TTL is honoured too)
    client.set(key, json_value(one), ttl=TTL)
    wait_for(lambda: answer(port) == 'one', 10, what='one again')
    wait_for(lambda: answer(port) is None, TTL + 10, what='the expired key to stop the forwarding')
    assert amb.process.poll() is None
    assert amb.stop() == 0
    assert 'stopped HAProxy' in amb.log()
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', port), timeout=2).close()


def test_no_request_lost_while_the_provider_moves(etcd_server, api, client, backends, processes, tmp_path,
                                                  prefix):
    """Under steady load, moving the key from a live instance to another loses nothing: HAProxy
    is reloaded with its listening socket kept."""
    one, two = backends('one'), backends('two')
    key = prefix + '/web/web.service'
    client.set(key, json_value(one))
    port = free_port()
    amb = ambassador(processes, etcd_server, api, tmp_path, prefix, 'web', port)
    wait_for(lambda: answer(port) == 'one', 10, what='HAProxy forwarding to one')
    stop = threading.Event()
    done, failures = [], []

    def load():
        while not stop.is_set():
            body = answer(port)
            (done if body else failures).append(body)
            time.sleep(0.005)
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        for target in (two, one, two, one):
            time.sleep(0.5)
            client.set(key, json_value(target))
            wait_for(lambda target=target: answer(port) == target.name, 10, what='move to %s' % target.name)
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(30)
    assert amb.log().count('reloaded HAProxy') >= 5
    assert len(done) > 100
    assert failures == [], '%d of %d requests failed' % (len(failures), len(done) + len(failures))
    assert set(done) == {'one', 'two'}


def test_watch_reestablished_after_etcd_restart(api, backends, processes, tmp_path, monkeypatch):
    server = etcd_server.EtcdServer(name='it-ambassador', workdir=str(tmp_path / 'etcd')).start()
    try:
        one, two = backends('one'), backends('two')
        with EtcdClient(endpoints=[server.url], api_version=api) as etcd:
            etcd.set('/services/web/a', json_value(one))
        port = free_port()
        amb = ambassador(processes, server, api, tmp_path, '/services', 'web', port)
        wait_for(lambda: answer(port) == 'one', 10, what='HAProxy forwarding to one')
        server.halt()
        amb.wait_log('failed', timeout=40)
        # the last good target keeps serving while etcd is away
        assert answers(port, 3) == ['one'] * 3
        server.resume()
        amb.wait_log('read 1 key(s) under /services', timeout=40, count=2)
        with EtcdClient(endpoints=[server.url], api_version=api) as etcd:
            etcd.set('/services/web/a', json_value(two))
        wait_for(lambda: answer(port) == 'two', 20, what='the move after the restart')
        assert amb.process.poll() is None
        assert amb.stop() == 0
    finally:
        server.stop()


def test_haproxy_dying_stops_the_ambassador(etcd_server, api, client, backends, processes, tmp_path, prefix):
    one = backends('one')
    client.set(prefix + '/web/a', json_value(one))
    port = free_port()
    amb = ambassador(processes, etcd_server, api, tmp_path, prefix, 'web', port)
    wait_for(lambda: answer(port) == 'one', 10, what='HAProxy forwarding to one')
    children = [int(pid) for pid in open('/proc/%d/task/%d/children' % (amb.process.pid, amb.process.pid)).read().split()]
    assert len(children) == 1
    os.kill(children[0], 9)
    assert amb.process.wait(20) == 1
    assert 'HAProxy (listening on %d) exited' % port in amb.log()


def test_bad_arguments_are_one_line(etcd_server, api, tmp_path):
    for args, message in ((['--service', 'web', '--listen', 'nowhere:80'], "'nowhere' is not an IP address"),
                          (['--service', 'web', '--listen', '127.0.0.1:0'], 'port must be a number in 1-65535'),
                          (['--service', 'a/b', '--listen', '8080'], 'may hold only')):
        result = Agent([etcd_server.url], api, args=args + ['--check-settings'], module='ambassador').run_once()
        assert result.returncode == 2, result
        assert message in result.stderr
        assert 'Traceback' not in result.stderr


# -- the announcer -------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def engine():
    reason = docker_available()
    if reason:
        pytest.fail('the announcer tests need the Docker engine of this machine: %s' % reason)


@pytest.fixture
def containers(engine):
    made = Containers()
    yield made
    made.cleanup()


def httpd(name, port=8000):
    return ['sh', '-c', 'mkdir -p /www && echo %s > /www/index.html && exec httpd -f -p %d -h /www' % (name, port)]


def announcer(track, server, api, tmp_path, prefix, container, *extra):
    args = ['--service', 'web', '--container', container, '--port', '8000', '--prefix', prefix,
            '--ttl', str(TTL)] + list(extra)
    process = Agent([server.url], api, args=args, log_path=str(tmp_path / 'announce.log'), module='announce',
                    ready='following Docker events')
    return track(process).start()


def test_announcer_follows_the_container(etcd_server, api, client, containers, processes, tmp_path, prefix):
    from integration_helpers import Oracle
    oracle = Oracle(etcd_server, api)
    name = containers.name('web')
    key = '%s/web/%s' % (prefix, name)
    running = announcer(processes, etcd_server, api, tmp_path, prefix, name, '--advertise-ip', '10.99.0.5')
    running.wait_log('nothing to announce for %s: container %s does not exist' % (key, name))
    assert oracle.get(key) is None

    containers.run('web', ports=['8000'], command=httpd('web'))
    published = published_port(name, '8000/tcp')
    wait_for(lambda: oracle.get(key) is not None, 10, what='the announcement')
    assert json.loads(oracle.get(key)) == {'host': '10.99.0.5', 'port': published}
    assert 0 < oracle.ttl(key) <= TTL
    time.sleep(TTL * 2)
    assert json.loads(oracle.get(key)) == {'host': '10.99.0.5', 'port': published}

    # stopped: withdrawn; started again on another port: announced with the new port
    containers.stop('web')
    wait_for(lambda: oracle.get(key) is None, 10, what='the withdrawal')
    containers.remove('web')
    other = free_port()
    containers.run('web', ports=['%d:8000' % other], command=httpd('web'))
    wait_for(lambda: oracle.get(key) is not None and json.loads(oracle.get(key))['port'] == other, 10,
             what='the new port')
    # the line comes after the write; the event that finds the new container running can also be
    # the old container's destroy, handled after the new one started under the same name
    running.wait_log('announced %s = {"host": "10.99.0.5", "port": %d} (container ' % (key, other), timeout=10)
    # after the kill, die or stop event, whichever found the container stopped first
    assert 'withdrew %s (container %s is not running; container ' % (key, name) in running.log()

    # SIGTERM: the key goes with the announcer
    assert running.stop() == 0
    assert oracle.get(key) is None
    assert 'withdrew %s on stop' % key in running.log()


def announced(etcd_server, api, containers, processes, tmp_path, prefix):
    """A running container 'web' announced (plain style, address 10.99.0.5):
    ``(oracle, container name, key, announcer)``."""
    from integration_helpers import Oracle
    oracle = Oracle(etcd_server, api)
    name = containers.name('web')
    key = '%s/web/%s' % (prefix, name)
    containers.run('web', ports=['8000'], command=httpd('web'))
    running = announcer(processes, etcd_server, api, tmp_path, prefix, name, '--advertise-ip', '10.99.0.5',
                        '--value-style', 'plain')
    wait_for(lambda: oracle.get(key) is not None, 10, what='the announcement')
    return oracle, name, key, running


def test_announcer_leaves_a_key_written_elsewhere(etcd_server, api, client, containers, processes, tmp_path,
                                                  prefix):
    """When the service moved and another machine's announcer wrote the key, stopping the old
    announcer does not delete it."""
    oracle, dummy, key, running = announced(etcd_server, api, containers, processes, tmp_path, prefix)
    assert oracle.get(key).startswith('10.99.0.5:')
    with EtcdClient(endpoints=[etcd_server.url], api_version=api) as other:
        keeper = other.key_keeper(30)
        keeper.put(key, '10.99.0.6:1234')
        assert running.stop() == 0
        assert oracle.get(key) == '10.99.0.6:1234'
        keeper.revoke()


@pytest.mark.parametrize('api', ['v2'])
def test_announcer_yields_a_key_another_writer_took(etcd_server, api, containers, processes, tmp_path, prefix):
    """Another writer's value is left alone: not refreshed over, not announced over on a later event
    of the container, not deleted on stop. A new start of the container announces it again."""
    import subprocess
    oracle, name, key, running = announced(etcd_server, api, containers, processes, tmp_path, prefix)
    oracle.put(key, '10.99.0.6:1234')
    running.wait_log('left %s alone: another writer holds it now' % key, timeout=TTL * 2)
    # an event of the container (not a start: a signal it ignores) makes the announcer look again
    subprocess.run(['docker', 'kill', '-s', 'WINCH', name], check=True, stdout=subprocess.DEVNULL)
    time.sleep(TTL)
    assert oracle.get(key) == '10.99.0.6:1234'
    assert running.log().count('announced %s' % key) == 1, running.log()
    # started again: announced again
    subprocess.run(['docker', 'restart', '-t', '1', name], check=True, stdout=subprocess.DEVNULL)
    wait_for(lambda: (oracle.get(key) or '').startswith('10.99.0.5:'), 10, what='the announcement after a start')
    assert running.stop() == 0
    assert oracle.get(key) is None


def test_announcer_and_ambassador_end_to_end(etcd_server, api, containers, processes, tmp_path, prefix):
    """The container's published port, announced with this machine's address, reached through
    the ambassador; the container replaced on another port is reached through the same port."""
    name = containers.name('web')
    containers.run('web', ports=['8000'], command=httpd('first'))
    announcer(processes, etcd_server, api, tmp_path, prefix, name)
    port = free_port()
    ambassador(processes, etcd_server, api, tmp_path, prefix, 'web', port)
    wait_for(lambda: answer(port) == 'first', 15, what='the container through the ambassador')
    containers.remove('web')
    wait_for(lambda: answer(port) is None, 15, what='the container gone')
    containers.run('web', ports=['%d:8000' % free_port()], command=httpd('second'))
    wait_for(lambda: answer(port) == 'second', 15, what='the new container through the same port')
