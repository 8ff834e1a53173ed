# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registrator agent as a real process against a real etcd on loopback and this machine's
Docker engine: containers are started from the workload image and removed afterwards.

Each test uses its own key prefix and host name, so containers of other users of the engine
only add keys the assertions never look at.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient, EtcdWatchTimeout
from etcd_server import EtcdServer, free_port
from integration_helpers import Oracle
from registrator_helpers import Agent, Containers, DockerSocketProxy, docker, docker_available, wait_for

TTL = 4


@pytest.fixture(scope='module', autouse=True)
def engine():
    reason = docker_available()
    if reason:
        pytest.fail('the registrator tests need the Docker engine of this machine: %s' % reason)


@pytest.fixture
def containers():
    made = Containers()
    yield made
    made.cleanup()


@pytest.fixture
def hostname():
    return 'it-%s' % uuid.uuid4().hex[:6]


@pytest.fixture
def agent(etcd_server, api, prefix, hostname, tmp_path):
    """A factory: agent(*args) makes (not starts) an agent for this test's prefix and host name."""
    made = []

    def make(*args, server=None, env=None):
        server = server or etcd_server
        process = Agent([server.url], api, args=['--prefix', prefix, '--hostname', hostname,
                                                 '--advertise-ip', '10.99.0.5', '--ttl', str(TTL)] + list(args),
                        env=env, log_path=str(tmp_path / 'agent.log'))
        made.append(process)
        return process
    yield make
    for process in made:
        if process.process is not None and process.process.poll() is None:
            process.kill()


def free_ports(count):
    return sorted(free_port('0.0.0.0') for dummy in range(count))


def mine(oracle, prefix, hostname, containers):
    """``{key: value}`` of the keys this test's agent registered for this test's containers (by the
    id's host name and container name): other containers of the engine, for example those of a
    concurrent test run, are left out."""
    return dict((k, v) for k, v in oracle.keys_below(prefix).items()
                if k.rsplit('/', 1)[-1].startswith('%s:%s-' % (hostname, containers.tag))
                or k.endswith('/fixed-%s' % containers.tag))


def test_containers_of_every_kind(oracle, agent, containers, prefix, hostname):
    """One port, two ports, UDP, SERVICE_NAME as label and env, SERVICE_IGNORE, no published port."""
    running = agent('--resync', '0').start()
    p = free_ports(8)
    containers.run('one', ports=['%d:80' % p[0]])
    containers.run('two', ports=['%d:80' % p[1], '%d:443' % p[2]])
    containers.run('udp', ports=['%d:53/udp' % p[3]])
    containers.run('label', ports=['%d:80' % p[4]], labels={'SERVICE_NAME': 'by-label'},
                   env={'SERVICE_NAME': 'by-env-loses'})
    containers.run('env', ports=['%d:80' % p[5]], env={'SERVICE_NAME': 'by-env', 'SERVICE_80_ID': 'fixed-%s' % containers.tag})
    containers.run('ignored', ports=['%d:80' % p[6]], env={'SERVICE_IGNORE': 'true'})
    containers.run('noport', extra=['--expose', '80'])
    containers.run('portnamed', ports=['%d:80' % p[7]], labels={'SERVICE_80_NAME': 'web'})
    t = containers.tag
    expected = {
        '%s/busybox/%s:%s-one:80' % (prefix, hostname, t): '10.99.0.5:%d' % p[0],
        '%s/busybox-80/%s:%s-two:80' % (prefix, hostname, t): '10.99.0.5:%d' % p[1],
        '%s/busybox-443/%s:%s-two:443' % (prefix, hostname, t): '10.99.0.5:%d' % p[2],
        '%s/busybox/%s:%s-udp:53:udp' % (prefix, hostname, t): '10.99.0.5:%d' % p[3],
        '%s/by-label/%s:%s-label:80' % (prefix, hostname, t): '10.99.0.5:%d' % p[4],
        '%s/by-env/fixed-%s' % (prefix, t): '10.99.0.5:%d' % p[5],
        '%s/web/%s:%s-portnamed:80' % (prefix, hostname, t): '10.99.0.5:%d' % p[7],
    }
    wait_for(lambda: mine(oracle, prefix, hostname, containers) == expected, what='keys of every container')
    for key in expected:
        assert 0 < oracle.ttl(key) <= TTL
    log = running.log()
    assert '%s-ignored: not registered: port 80/tcp: SERVICE_IGNORE is set' % t in log
    assert '%s-noport: not registered: port 80/tcp: port is not published on the host' % t in log
    assert 'registered %s/busybox/%s:%s-one:80 = 10.99.0.5:%d (container %s-one: start)' % (
        prefix, hostname, t, p[0], t) in log
    # still there after several TTLs: renewed
    time.sleep(TTL * 2)
    assert mine(oracle, prefix, hostname, containers) == expected
    assert running.stop() == 0


def test_stop_die_and_restart_on_a_new_port(oracle, agent, containers, prefix, hostname):
    agent('--resync', '0').start()
    p = free_ports(4)
    containers.run('stopped', ports=['%d:80' % p[0]])
    containers.run('killed', ports=['%d:80' % p[1]])
    containers.run('moved', ports=['%d:80' % p[2]])
    t = containers.tag

    def key(short):
        return '%s/busybox/%s:%s-%s:80' % (prefix, hostname, t, short)

    wait_for(lambda: len(mine(oracle, prefix, hostname, containers)) == 3, what='three keys')
    containers.stop('stopped')
    wait_for(lambda: key('stopped') not in mine(oracle, prefix, hostname, containers), what='stop deregisters')
    containers.kill('killed')
    wait_for(lambda: key('killed') not in mine(oracle, prefix, hostname, containers), what='kill -9 deregisters')
    containers.remove('moved')
    containers.run('moved', ports=['%d:80' % p[3]])
    wait_for(lambda: mine(oracle, prefix, hostname, containers) == {key('moved'): '10.99.0.5:%d' % p[3]},
             what='the key follows the new host port')
    # a restart with the same port: the key comes back after die/start
    docker('restart', '-t', '1', containers.name('moved'))
    wait_for(lambda: mine(oracle, prefix, hostname, containers) == {key('moved'): '10.99.0.5:%d' % p[3]},
             what='the key after docker restart')
    # a paused container cannot answer: deregistered until unpaused
    docker('pause', containers.name('moved'))
    wait_for(lambda: mine(oracle, prefix, hostname, containers) == {}, what='pause deregisters')
    docker('unpause', containers.name('moved'))
    wait_for(lambda: mine(oracle, prefix, hostname, containers) == {key('moved'): '10.99.0.5:%d' % p[3]},
             what='unpause registers again')


def test_health_gating(oracle, agent, containers, prefix, hostname):
    running = agent('--resync', '0').start()
    (port,) = free_ports(1)
    containers.run('health', ports=['%d:80' % port],
                   extra=['--health-cmd', '[ "$(cat /tmp/state 2>/dev/null)" = ok ]', '--health-interval', '1s', '--health-retries', '1',
                          '--health-timeout', '2s'])
    key = '%s/busybox/%s:%s-health:80' % (prefix, hostname, containers.tag)
    running.wait_log('%s-health: not registered: health check status is' % containers.tag, timeout=10)
    time.sleep(2.5)
    assert key not in mine(oracle, prefix, hostname, containers), 'registered before healthy'
    docker('exec', containers.name('health'), 'sh', '-c', 'echo ok > /tmp/state')
    wait_for(lambda: key in mine(oracle, prefix, hostname, containers), timeout=15, what='healthy -> registered')
    docker('exec', containers.name('health'), 'sh', '-c', 'echo failing > /tmp/state')
    wait_for(lambda: key not in mine(oracle, prefix, hostname, containers), timeout=15, what='unhealthy -> deregistered')
    running.wait_log('health_status: unhealthy', timeout=5)  # logged after the delete


def test_sigkill_then_stale_keys_are_removed_on_restart(oracle, agent, containers, prefix, hostname):
    # a TTL long enough that the stale key is still there when the second agent starts, however
    # slow the docker stop and the start-up are (the last --ttl given wins)
    first_ttl = 10
    first = agent('--resync', '0', '--ttl', str(first_ttl)).start()
    p = free_ports(2)
    containers.run('stays', ports=['%d:80' % p[0]])
    containers.run('goes', ports=['%d:80' % p[1]])
    t = containers.tag
    stays = '%s/busybox/%s:%s-stays:80' % (prefix, hostname, t)
    goes = '%s/busybox/%s:%s-goes:80' % (prefix, hostname, t)
    wait_for(lambda: set(mine(oracle, prefix, hostname, containers)) == {stays, goes}, what='both keys')
    first.kill()
    killed = time.monotonic()
    containers.stop('goes')
    time.sleep(0.5)
    assert goes in mine(oracle, prefix, hostname, containers), 'nobody should have removed it yet'
    second = agent('--resync', '0').start()
    assert mine(oracle, prefix, hostname, containers) == {stays: '10.99.0.5:%d' % p[0]}
    assert 'removed stale %s = 10.99.0.5:%d (no running container of this host)' % (goes, p[1]) in second.log()
    # the key is kept alive by the new agent (with its own TTL), past the old one's
    time.sleep(max(0, killed + first_ttl + 1 - time.monotonic()))
    assert mine(oracle, prefix, hostname, containers) == {stays: '10.99.0.5:%d' % p[0]}


def test_keys_expire_within_the_ttl_after_the_agent_dies(oracle, agent, containers, prefix, hostname):
    running = agent('--resync', '0').start()
    (port,) = free_ports(1)
    containers.run('web', ports=['%d:80' % port])
    wait_for(lambda: mine(oracle, prefix, hostname, containers), what='key')
    running.kill()
    killed = time.monotonic()
    wait_for(lambda: not mine(oracle, prefix, hostname, containers), timeout=TTL + 3, interval=0.1, what='expiry')
    assert time.monotonic() - killed <= TTL + 3


def test_renewals_wake_no_watcher(etcd_server, api, oracle, agent, containers, prefix, hostname):
    agent('--resync', '0').start()
    (port,) = free_ports(1)
    containers.run('web', ports=['%d:80' % port])
    wait_for(lambda: mine(oracle, prefix, hostname, containers), what='key')
    client = EtcdClient([etcd_server.url], api_version=api)
    start = client.revision(prefix) + 1
    # three TTLs: about nine renewals; a watcher of the prefix sees none of them
    deadline = time.monotonic() + TTL * 3
    with pytest.raises(EtcdWatchTimeout):
        while True:
            event = client.watch(prefix, recursive=True, index=start,
                                 timeout=max(0.1, deadline - time.monotonic()))
            if ':%s-' % containers.tag in event.key:
                pytest.fail('watcher woken: %s %s' % (event.action, event.key))
            start = event.index + 1  # another container of the engine: not this test's
    assert mine(oracle, prefix, hostname, containers)


@pytest.mark.parametrize('deregister', [False, True], ids=['default', 'deregister-on-stop'])
def test_clean_stop(oracle, agent, containers, prefix, hostname, deregister):
    running = agent('--resync', '0', *(['--deregister-on-stop'] if deregister else [])).start()
    (port,) = free_ports(1)
    containers.run('web', ports=['%d:80' % port])
    wait_for(lambda: mine(oracle, prefix, hostname, containers), what='key')
    started = time.monotonic()
    assert running.stop() == 0
    assert time.monotonic() - started < 5
    if deregister:
        assert mine(oracle, prefix, hostname, containers) == {}
        assert re.search(r'deregistered \d+ key\(s\) on stop: .*%s-web:80' % re.escape(containers.tag), running.log())
    else:
        assert len(mine(oracle, prefix, hostname, containers)) == 1
        assert re.search(r'leaving \d+ key\(s\) to expire within %ds' % TTL, running.log())
        wait_for(lambda: not mine(oracle, prefix, hostname, containers), timeout=TTL + 3, interval=0.1, what='expiry')


def test_once_mode(oracle, agent, containers, prefix, hostname):
    (port,) = free_ports(1)
    containers.run('web', ports=['%d:80' % port])
    oracle.put('%s/busybox/%s:gone:80' % (prefix, hostname), '10.99.0.5:1')
    result = agent('--ttl', '0').run_once()
    assert result.returncode == 0, result.stdout + result.stderr
    assert mine(oracle, prefix, hostname, containers) == {
        '%s/busybox/%s:%s-web:80' % (prefix, hostname, containers.tag): '10.99.0.5:%d' % port}
    assert oracle.ttl('%s/busybox/%s:%s-web:80' % (prefix, hostname, containers.tag)) is None


def test_etcd_restart_under_a_running_agent(api, agent, containers, prefix, hostname, tmp_path):
    server = EtcdServer(name='it-restart', workdir=str(tmp_path / 'etcd'))
    server.start()
    try:
        oracle = Oracle(server, api)
        running = agent('--resync', '0', server=server).start()
        p = free_ports(3)
        containers.run('stays', ports=['%d:80' % p[0]])
        containers.run('goes', ports=['%d:80' % p[1]])
        t = containers.tag

        def key(short, port):
            return '%s/busybox/%s:%s-%s:80' % (prefix, hostname, t, short), '10.99.0.5:%d' % port
        wait_for(lambda: len(mine(oracle, prefix, hostname, containers)) == 2, what='two keys')
        server.halt()
        # while etcd is away for longer than the TTL: one container stops, another starts
        containers.stop('goes')
        containers.run('new', ports=['%d:80' % p[2]])
        time.sleep(TTL + 1)
        server.resume()
        wait_for(lambda: mine(oracle, prefix, hostname, containers) == dict([key('stays', p[0]), key('new', p[2])]),
                 timeout=20, what='caught up after etcd came back')
        # and it keeps them alive afterwards
        time.sleep(TTL * 2)
        assert mine(oracle, prefix, hostname, containers) == dict([key('stays', p[0]), key('new', p[2])])
        assert running.process.poll() is None
        assert 'keepalive failed' in running.log() or 'not handled' in running.log()
    finally:
        server.stop()


def test_tls_and_client_certificates(tls_server, tls_material, api, containers, tmp_path):
    oracle = Oracle(tls_server, api)
    prefix = '/it/tls-%s' % uuid.uuid4().hex[:6]
    hostname = 'it-tls'
    running = Agent([tls_server.url], api, args=['--prefix', prefix, '--hostname', hostname, '--advertise-ip',
                                                 '10.99.0.7', '--ttl', str(TTL), '--resync', '0'],
                    env={'ETCDFLEET_CA_CERT': tls_material.ca_cert, 'ETCDFLEET_CLIENT_CERT': tls_material.client_cert,
                         'ETCDFLEET_CLIENT_KEY': tls_material.client_key},
                    log_path=str(tmp_path / 'agent.log'))
    running.start()
    try:
        (port,) = free_ports(1)
        containers.run('web', ports=['%d:80' % port])
        wait_for(lambda: mine(oracle, prefix, hostname, containers) == {
            '%s/busybox/%s:%s-web:80' % (prefix, hostname, containers.tag): '10.99.0.7:%d' % port}, what='key over TLS')
    finally:
        assert running.stop() == 0


def test_bad_setting_is_one_line(etcd_server, api):
    result = Agent([etcd_server.url], api, args=['--ttl', '1', '--once']).run_once()
    assert result.returncode == 2
    assert 'ttl 1 leaves no time to renew the keys' in result.stderr
    assert 'Traceback' not in result.stderr


def test_keys_expire_while_docker_is_unreachable_and_come_back(oracle, agent, containers, prefix, hostname, tmp_path):
    """Docker away: the containers' state is unknown, so the keys are no longer refreshed and
    expire within the TTL; Docker back: what runs is registered, what went meanwhile is not."""
    proxy = DockerSocketProxy(str(tmp_path / 'docker.sock')).open()
    try:
        running = agent('--resync', '0', '--docker-url', proxy.url).start()
        web_port, gone_port, new_port = free_ports(3)
        containers.run('web', ports=['%d:80' % web_port])
        containers.run('gone', ports=['%d:80' % gone_port])
        wait_for(lambda: len(mine(oracle, prefix, hostname, containers)) == 2, what='two keys')
        proxy.close()
        running.wait_log('Docker unreachable')
        wait_for(lambda: not mine(oracle, prefix, hostname, containers), timeout=TTL + 3, interval=0.1,
                 what='expiry while Docker is unreachable')
        containers.remove('gone')
        containers.run('new', ports=['%d:80' % new_port])
        proxy.open()
        wait_for(lambda: sorted(v.rsplit(':', 1)[-1] for v in mine(oracle, prefix, hostname, containers).values())
                 == sorted([str(web_port), str(new_port)]), timeout=20, what='web and new registered again')
        assert running.process.poll() is None
        log = running.log()
        assert log.count('no longer refreshing') == 1, log
    finally:
        proxy.close()
