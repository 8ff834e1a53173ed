# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The discover watcher against a real etcd, a real HAProxy and real HTTP backends on loopback.

HAProxy runs as a child in master-worker mode and is reloaded with SIGUSR2; the watcher runs as
``python -m etcdfleet_agents.discover`` with a settings file, as on the nodes.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import stat
import threading
import time
import urllib.error
import urllib.request

import pytest

import etcd_server
from etcd_server import free_port
from hostile_names import HOSTILE
from haproxy_harness import (TEMPLATE, HaproxyProcess, WatcherProcess, haproxy_binary, http_get, wait_for,
                             watcher_settings)

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient
from etcdfleet_agents.haproxy.process import Haproxy, ReloadFailed, runtime_command


@pytest.fixture
def haproxy(tmp_path):
    if haproxy_binary() is None:
        pytest.fail('haproxy is not installed (apt-get install haproxy, or set HAPROXY_BINARY)')
    process = HaproxyProcess(str(tmp_path)).start()
    yield process
    process.stop()


@pytest.fixture
def watchers(tmp_path):
    started = []

    def make(settings, endpoint, api):
        watcher = WatcherProcess(str(tmp_path), settings, endpoint, api)
        started.append(watcher)
        return watcher
    yield make
    for watcher in started:
        watcher.stop()


def key(prefix, service, instance):
    return '%s/%s/%s' % (prefix, service, instance)


def answers(port, count):
    result = []
    for dummy in range(count):
        try:
            result.append(http_get(port))
        except (OSError, urllib.error.URLError) as exc:
            result.append('ERROR %s' % exc)
    return result


def reaches(port, names, count=None):
    """True when ``count`` requests reach exactly the set ``names``."""
    seen = set(answers(port, count or 3 * max(1, len(names))))
    return seen == set(names)


def servers_in(config_path):
    with open(config_path) as handle:
        return sum(1 for line in handle if line.strip().startswith('server '))


def status_of(watcher_dir):
    with open(os.path.join(watcher_dir, 'status.json')) as handle:
        return json.load(handle)


def start_watcher(make, haproxy, prefix, etcd, api, services, reload_command=None, **extra):
    stats_port = free_port()
    settings = watcher_settings(haproxy, services, stats_port, prefix=prefix, **extra)
    if reload_command:
        settings['haproxy']['reload_command'] = reload_command
    watcher = make(settings, etcd.url, api).start()
    wait_for(lambda: 'reloaded HAProxy' in watcher.log(), 15, what='first reload')
    return watcher, stats_port


def test_round_robin_across_three_backends(haproxy, backends, client, etcd_server, api, prefix, watchers):
    port = free_port()
    kappa = [backends('kappa-test-%d' % i) for i in (1, 2, 3)]
    for index, backend in enumerate(kappa, 1):
        client.set(key(prefix, 'centos', 'core-0%d:kappa-test-%d:8000' % (index, index)), backend.value)
    watcher, dummy = start_watcher(watchers, haproxy, prefix, etcd_server, api,
                                   [{'name': 'centos', 'port': port, 'mode': 'http'}])
    wait_for(lambda: reaches(port, [b.name for b in kappa]), 10, what='all three backends')
    replies = answers(port, 9)
    # round robin: every window of three consecutive answers holds all three backends
    for start in range(0, 7):
        assert sorted(replies[start:start + 3]) == ['kappa-test-1', 'kappa-test-2', 'kappa-test-3'], replies
    config = open(haproxy.config).read()
    assert config.count(' check inter ') == servers_in(haproxy.config) == 3
    assert 'balance roundrobin' in config
    assert 'option redispatch' in config
    assert watcher.process.poll() is None


def test_add_and_remove_backends(haproxy, backends, client, etcd_server, api, prefix, watchers):
    port = free_port()
    one = backends('one')
    client.set(key(prefix, 'web', 'h1:one:80'), one.value)
    watcher, dummy = start_watcher(watchers, haproxy, prefix, etcd_server, api, [{'name': 'web', 'port': port}])
    wait_for(lambda: reaches(port, ['one']), 10, what='backend one')

    two, three = backends('two'), backends('three')
    client.set(key(prefix, 'web', 'h2:two:80'), two.value)
    client.set(key(prefix, 'web', 'h3:three:80'), '{"host": "127.0.0.1", "port": %d}' % three.port)
    wait_for(lambda: reaches(port, ['one', 'two', 'three']), 10, what='backends added')

    client.delete(key(prefix, 'web', 'h2:two:80'))
    wait_for(lambda: reaches(port, ['one', 'three'], 12), 10, what='two removed')
    assert 'two' not in open(haproxy.config).read()

    # a whole service directory removed at once (v2 recursive delete; v3 deletes every key)
    if api == 'v2':
        client.delete('%s/web' % prefix, recursive=True)
    else:
        client.delete_many([key(prefix, 'web', 'h1:one:80'), key(prefix, 'web', 'h3:three:80')])
    wait_for(lambda: servers_in(haproxy.config) == 0, 10, what='no servers left')
    assert watcher.process.poll() is None
    # the port stays bound; with no server a tcp service closes the connection at once
    wait_for(lambda: answers(port, 1)[0].startswith('ERROR'), 10, what='no server answering')
    # the new worker answers; one of an earlier reload can take a connection until it has exited
    wait_for(lambda: len(haproxy.workers()) == 1, 10, what='the earlier workers gone')
    replies = answers(port, 4)
    assert all(reply.startswith('ERROR') for reply in replies), replies


def test_garbage_is_skipped_and_good_backends_keep_serving(haproxy, backends, client, etcd_server, api, prefix, watchers):
    port = free_port()
    good = [backends('good-1'), backends('good-2')]
    for index, backend in enumerate(good, 1):
        client.set(key(prefix, 'web', 'h%d:good:80' % index), backend.value)
    watcher, dummy = start_watcher(watchers, haproxy, prefix, etcd_server, api,
                                   [{'name': 'web', 'port': port, 'mode': 'http'}])
    wait_for(lambda: reaches(port, ['good-1', 'good-2']), 10, what='good backends')
    garbage = {
        key(prefix, 'web', 'bad-address'): 'not an address',
        key(prefix, 'web', 'bad-port'): '127.0.0.1:70000',
        key(prefix, 'web', 'zero-port'): '127.0.0.1:0',
        key(prefix, 'web', 'bad-json'): '{"host": "127.0.0.1", "port": ',
        key(prefix, 'web', 'json-no-port'): '{"host": "127.0.0.1"}',
        key(prefix, 'web', 'hostname'): 'does-not-resolve.invalid:80',
        key(prefix, 'web', 'newline'): '127.0.0.1:80\nbackend evil',
        key(prefix, 'web', 'empty'): '',
        '%s/web/too/deep' % prefix: '127.0.0.1:80',
        '%s/toplevel' % prefix: '127.0.0.1:80',
    }
    for garbage_key, value in garbage.items():
        client.set(garbage_key, value)
    wait_for(lambda: all(k in watcher.log() for k in garbage), 10, what='a warning per garbage key')
    assert set(answers(port, 8)) == {'good-1', 'good-2'}
    config = open(haproxy.config).read()
    assert servers_in(haproxy.config) == 2, config
    assert 'evil' not in config and 'invalid' not in config
    wait_for(lambda: len(status_of(os.path.dirname(haproxy.config))['warnings']) == len(garbage), 5,
             what='the warnings in the status file')
    status = status_of(os.path.dirname(haproxy.config))
    assert status['ok'] is True
    assert watcher.process.poll() is None
    # one warning per entry, not one per render
    client.set(key(prefix, 'web', 'h9:good:80'), good[0].value.replace('127.0.0.1', '127.0.0.2'))
    wait_for(lambda: '127.0.0.2' in open(haproxy.config).read(), 10, what='another render')
    assert watcher.log().count("bad-address'") == 1


def test_broken_template_keeps_the_old_configuration(haproxy, backends, client, etcd_server, api, prefix, watchers,
                                                     tmp_path):
    port = free_port()
    template = str(tmp_path / 'user.cfg.j2')
    shutil.copy(TEMPLATE, template)
    one, two = backends('one'), backends('two')
    client.set(key(prefix, 'web', 'h1:one:80'), one.value)
    watcher, dummy = start_watcher(watchers, haproxy, prefix, etcd_server, api,
                                   [{'name': 'web', 'port': port}], template=template)
    wait_for(lambda: reaches(port, ['one']), 10, what='backend one')
    good_config = open(haproxy.config).read()
    reloads = haproxy.reloads()

    # Jinja2 syntax error
    with open(template, 'a') as handle:
        handle.write('{% for x in %}\n')
    client.set(key(prefix, 'web', 'h2:two:80'), two.value)
    wait_for(lambda: 'render-failed' in watcher.log(), 10, what='the render error in the log')
    assert 'user.cfg.j2 line' in watcher.log()
    assert open(haproxy.config).read() == good_config
    wait_for(lambda: status_of(str(tmp_path))['ok'] is False, 5, what='the error in the status file')
    assert set(answers(port, 6)) == {'one'}

    # valid Jinja2, invalid HAProxy: rejected by haproxy -c, never installed
    shutil.copy(TEMPLATE, template)
    with open(template, 'a') as handle:
        handle.write('    no-such-keyword 42\n')
    client.set(key(prefix, 'web', 'h3:two:80'), two.value.replace('127.0.0.1', '127.0.0.3'))
    wait_for(lambda: 'invalid: haproxy -c rejected' in watcher.log(), 10, what='the check error in the log')
    assert open(haproxy.config).read() == good_config
    assert 'no-such-keyword' in open(haproxy.config + '.rejected').read()
    assert stat.S_IMODE(os.stat(haproxy.config + '.rejected').st_mode) & 0o077 == 0
    assert haproxy.reloads() == reloads
    assert set(answers(port, 6)) == {'one'}
    wait_for(lambda: 'no-such-keyword' in status_of(str(tmp_path))['message'], 5,
             what='the check error in the status file')
    status = status_of(str(tmp_path))
    assert status['ok'] is False

    # repaired: the next change installs it
    shutil.copy(TEMPLATE, template)
    client.delete(key(prefix, 'web', 'h3:two:80'))
    wait_for(lambda: reaches(port, ['one', 'two']), 10, what='recovery')
    assert not os.path.exists(haproxy.config + '.rejected')
    assert watcher.process.poll() is None


def test_unchanged_render_does_not_reload(haproxy, backends, client, etcd_server, api, prefix, watchers):
    port = free_port()
    one = backends('one')
    client.set(key(prefix, 'web', 'h1:one:80'), one.value)
    watcher, dummy = start_watcher(watchers, haproxy, prefix, etcd_server, api, [{'name': 'web', 'port': port}])
    wait_for(lambda: reaches(port, ['one']), 10, what='backend one')
    wait_for(lambda: haproxy.reloads() == 1, 5, what='the first reload')
    # a service nobody exposes changes: render is the same
    client.set(key(prefix, 'other', 'h1:x:80'), '127.0.0.1:1')
    wait_for(lambda: 'unchanged (web' in watcher.log(), 10, what='an unchanged render')
    # the same value written again (a registrator refresh): nothing to render at all
    renders = watcher.log().count('configuration ')
    for dummy in range(5):
        client.set(key(prefix, 'web', 'h1:one:80'), one.value)
    time.sleep(1.0)
    assert watcher.log().count('configuration ') == renders
    assert haproxy.reloads() == 1
    assert len(haproxy.workers()) == 1


def test_server_state_survives_reloads(haproxy, backends, client, etcd_server, api, prefix, watchers):
    port = free_port()
    one, two = backends('one'), backends('two')
    client.set(key(prefix, 'web', 'h1:one:80'), one.value)
    client.set(key(prefix, 'web', 'h2:two:80'), two.value)
    start_watcher(watchers, haproxy, prefix, etcd_server, api, [{'name': 'web', 'port': port}])
    two.stop()

    def op_states():
        text = runtime_command(haproxy.runtime_socket, 'show servers state')
        states = {}
        for line in text.splitlines()[2:]:
            fields = line.split()
            if len(fields) > 5:
                states[fields[3].split('_')[0]] = int(fields[5])
        return states
    wait_for(lambda: op_states().get('h2:two:80') == 0, 15, what='server two marked down by its health check')
    reloads = haproxy.reloads()
    three = backends('three')
    client.set(key(prefix, 'web', 'h3:three:80'), three.value)
    wait_for(lambda: haproxy.reloads() == reloads + 1 and len(haproxy.workers()) == 1, 10, what='the reload')
    states = wait_for(lambda: op_states() if 'h3:three:80' in op_states() else None, 5, what='the new worker')
    # the new worker knows at once that two is down (a fresh start would assume it is up)
    assert states['h2:two:80'] == 0, states
    assert states['h1:one:80'] == 2, states
    assert os.path.getsize(haproxy.server_state_file) > 0


def test_stats_page_bound_and_protected(haproxy, client, etcd_server, api, prefix, watchers):
    stats_port = free_port()
    settings = watcher_settings(haproxy, [], stats_port, prefix=prefix,
                                stats={'user': 'admin', 'password': "p'ss$word", 'uri': '/haproxy'})
    watcher = watchers(settings, etcd_server.url, api).start()
    wait_for(lambda: 'reloaded HAProxy' in watcher.log(), 15, what='first reload')
    url = 'http://127.0.0.1:%d/haproxy' % stats_port

    def status(password=None):
        headers = {}
        if password is not None:
            headers['Authorization'] = 'Basic ' + base64.b64encode(b'admin:' + password).decode('ascii')
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b''
    assert wait_for(lambda: status()[0], 10, what='the stats page') == 401
    assert status(b'wrong')[0] == 401
    code, body = status(b"p'ss$word")
    assert code == 200 and b'Statistics Report' in body
    # the configuration holds the password: its owner alone reads it
    assert 'stats auth "admin:' in open(haproxy.config).read()
    assert stat.S_IMODE(os.stat(haproxy.config).st_mode) & 0o077 == 0
    # bound where configured only
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.2', stats_port), timeout=2).close()


def test_once_and_check_modes(haproxy, backends, client, etcd_server, api, prefix, watchers, tmp_path):
    port = free_port()
    one = backends('one')
    client.set(key(prefix, 'web', 'h1:one:80'), one.value)
    settings = watcher_settings(haproxy, [{'name': 'web', 'port': port}], free_port(), prefix=prefix)
    watcher = watchers(settings, etcd_server.url, api)
    before = open(haproxy.config).read()

    broken = str(tmp_path / 'broken.j2')
    with open(broken, 'w') as handle:
        handle.write('global\n    maxconn {{ no_such_variable }}\n')
    checked = watcher.run('--check', '--template', broken)
    assert checked.returncode == 1, checked.stdout
    assert 'no_such_variable' in checked.stdout
    checked = watcher.run('--check')
    assert checked.returncode == 0, checked.stdout
    assert open(haproxy.config).read() == before

    once = watcher.run('--once')
    assert once.returncode == 0, once.stdout
    assert 'reloaded HAProxy' in once.stdout
    wait_for(lambda: reaches(port, ['one']), 10, what='backend one after --once')
    again = watcher.run('--once')
    assert again.returncode == 0 and 'unchanged' in again.stdout, again.stdout

    bad_settings = watcher.run('--check-settings', '--template', broken)
    assert bad_settings.returncode == 0
    with open(watcher.settings_path, 'w') as handle:
        json.dump(dict(settings, services=[{'name': 'web', 'port': 'eighty'}]), handle)
    bad_settings = watcher.run('--check-settings')
    assert bad_settings.returncode == 2
    assert "port 'eighty' is not a number" in bad_settings.stdout


def test_zero_failed_requests_during_churn(haproxy, backends, client, etcd_server, api, prefix, watchers):
    """Bounded load (about 50 requests/s for 12 s) while backends come and go; every request
    must succeed. Backends leave both ways: key deleted first, and process killed first."""
    port = free_port()
    pool = [backends('b%d' % i) for i in range(4)]
    for backend in pool[:2]:
        client.set(key(prefix, 'web', backend.name), backend.value)
    start_watcher(watchers, haproxy, prefix, etcd_server, api, [{'name': 'web', 'port': port, 'mode': 'http'}])
    wait_for(lambda: reaches(port, ['b0', 'b1']), 10, what='initial backends')

    failures = []
    done = []
    stop = threading.Event()

    def load():
        interval = 1.0 / 50
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                done.append(http_get(port, timeout=5))
            except Exception as exc:  # pylint: disable=broad-except
                failures.append(repr(exc))
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    thread = threading.Thread(target=load)
    thread.start()
    try:
        extra = backends('late')
        extra.stop()
        for step in range(6):
            # add one
            newcomer = pool[2 + step % 2]
            if newcomer.process is None:
                newcomer.start()
            client.set(key(prefix, 'web', newcomer.name), newcomer.value)
            time.sleep(1.0)
            # graceful removal: key first, then the process
            client.delete(key(prefix, 'web', newcomer.name))
            time.sleep(0.5)
            newcomer.stop()
            # abrupt removal: the process dies before its key is deleted
            extra.start()
            client.set(key(prefix, 'web', 'late'), extra.value)
            time.sleep(0.5)
            extra.stop()
            time.sleep(0.3)
            client.delete(key(prefix, 'web', 'late'))
    finally:
        stop.set()
        thread.join(30)
    assert len(done) > 300
    assert failures == [], '%d of %d requests failed: %s' % (len(failures), len(done) + len(failures), failures[:5])
    assert set(done) >= {'b0', 'b1', 'b2', 'b3'}


def test_reconnects_after_etcd_restart(haproxy, backends, watchers, tmp_path, monkeypatch, api):
    """etcd goes away and comes back on the same address: the watcher keeps the last
    configuration meanwhile, reconnects with backoff and follows again."""
    server = etcd_server.EtcdServer(name='it-discover', workdir=str(tmp_path / 'etcd')).start()
    ports = (server.client_port, server.peer_port)
    try:
        port = free_port()
        one, two = backends('one'), backends('two')
        with EtcdClient(endpoints=[server.url], api_version=api) as etcd:
            etcd.set('/services/web/h1:one:80', one.value)
        watcher, dummy = start_watcher(watchers, haproxy, '/services', server, api, [{'name': 'web', 'port': port}])
        wait_for(lambda: reaches(port, ['one']), 10, what='backend one')
        server.stop()
        wait_for(lambda: 'failed' in watcher.log(), 40, what='the watcher noticing etcd is gone')
        assert set(answers(port, 4)) == {'one'}
        restarted = etcd_server.EtcdServer(name='it-discover', workdir=str(tmp_path / 'etcd'))
        sequence = iter(ports)
        monkeypatch.setattr(etcd_server, 'free_port', lambda: next(sequence))
        restarted.start()
        server = restarted
        with EtcdClient(endpoints=[server.url], api_version=api) as etcd:
            assert etcd.get('/services/web/h1:one:80').value == one.value
            etcd.set('/services/web/h2:two:80', two.value)
        wait_for(lambda: reaches(port, ['one', 'two']), 30, what='backend two after the restart')
        assert watcher.process.poll() is None
    finally:
        server.stop()


def test_hostile_names_never_reach_haproxy(haproxy, backends, client, etcd_server, api, prefix, watchers):
    base = free_port() - 100
    good = backends('good')
    client.set(key(prefix, 'web-100', 'h1:good:80'), good.value)
    watcher, dummy = start_watcher(watchers, haproxy, prefix, etcd_server, api, [],
                                   rule={'pattern': '*', 'base_port': base})
    wait_for(lambda: reaches(base + 100, ['good']), 10, what='the good service')
    bad_keys = []
    for what, name in sorted(HOSTILE.items()):
        if what in ('empty', 'slash', 'dot', 'dotdot'):
            continue  # another depth or a path etcd itself rewrites
        bad_keys.append(key(prefix, name + '-101', 'h1:bad:80'))
        bad_keys.append(key(prefix, 'web-102', name))
    for bad in bad_keys:
        client.set(bad, good.value)
    wait_for(lambda: len(status_of(os.path.dirname(haproxy.config))['warnings']) == len(bad_keys), 15,
             what='one warning per hostile key')
    config = open(haproxy.config).read()
    assert 'listen pwn' not in config and '*:9999' not in config
    assert 'fe_web-102' not in config
    log = watcher.log()
    assert sum(1 for line in log.splitlines() if 'skipped' in line) == len(bad_keys), log
    assert not [line for line in log.splitlines() if line.startswith(('listen', ' '))], log
    # a later good change still applies
    other = backends('other')
    client.set(key(prefix, 'web-100', 'h2:other:80'), other.value)
    wait_for(lambda: reaches(base + 100, ['good', 'other']), 10, what='a later good change')
    assert watcher.process.poll() is None


def flaky_reload(haproxy, flag):
    """A reload command that fails while ``flag`` exists (removing it when it holds 'once')."""
    script = ('if [ -e "$1" ]; then grep -q once "$1" && rm -f "$1"; echo "reload refused" >&2; exit 1; fi; '
              'shift; exec "$@"')
    return ['sh', '-c', script, 'reload', flag] + haproxy.reload_command


def reload_fails_on_a_change(haproxy, backends, client, etcd_server, api, prefix, watchers, flag, mode):
    """Backend ``one`` served through a watcher whose reload command refuses (``mode``: 'once' or
    'always') from the moment backend ``two`` is added; returns (watcher, service port, stats port)."""
    port = free_port()
    one, two = backends('one'), backends('two')
    client.set(key(prefix, 'web', 'h1:one:80'), one.value)
    watcher, stats_port = start_watcher(watchers, haproxy, prefix, etcd_server, api, [{'name': 'web', 'port': port}],
                                        reload_command=flaky_reload(haproxy, flag))
    wait_for(lambda: reaches(port, ['one']), 10, what='backend one')
    with open(flag, 'w') as handle:
        handle.write(mode + '\n')
    client.set(key(prefix, 'web', 'h2:two:80'), two.value)
    wait_for(lambda: 'reload-failed' in watcher.log(), 10, what='the failed reload in the log')
    return watcher, port, stats_port


def test_failed_reload_is_retried_without_an_etcd_change(haproxy, backends, client, etcd_server, api, prefix,
                                                         watchers, tmp_path):
    flag = str(tmp_path / 'refuse-reload')
    watcher, port, dummy = reload_fails_on_a_change(haproxy, backends, client, etcd_server, api, prefix, watchers,
                                                    flag, 'once')
    # nothing changes in etcd any more: the retry alone brings backend two in
    wait_for(lambda: reaches(port, ['one', 'two']), 15, what='backend two after the retry')
    assert not os.path.exists(flag)
    log = watcher.log()
    assert log.count('reload-failed') == 1, log
    assert log.count('recovered after') == 1, log
    assert status_of(os.path.dirname(haproxy.config))['ok'] is True


def test_restarted_watcher_applies_a_reload_that_failed(haproxy, backends, client, etcd_server, api, prefix,
                                                        watchers, tmp_path):
    flag = str(tmp_path / 'refuse-reload')
    first, port, stats_port = reload_fails_on_a_change(haproxy, backends, client, etcd_server, api, prefix,
                                                       watchers, flag, 'always')
    assert first.stop() == 0
    assert 'two' in open(haproxy.config).read()  # installed, not running
    assert reaches(port, ['one'])
    os.unlink(flag)
    os.rename(str(tmp_path / 'discover.log'), str(tmp_path / 'discover-first.log'))
    # the same settings: the second watcher renders the very file the first one installed
    settings = watcher_settings(haproxy, [{'name': 'web', 'port': port}], stats_port, prefix=prefix)
    settings['haproxy']['reload_command'] = flaky_reload(haproxy, flag)
    second = watchers(settings, etcd_server.url, api).start()
    wait_for(lambda: reaches(port, ['one', 'two']), 15, what='backend two after the restart')
    assert 'reloaded HAProxy' in second.log()


@pytest.fixture
def haproxy_with_master_cli(tmp_path):
    if haproxy_binary() is None:
        pytest.fail('haproxy is not installed (apt-get install haproxy, or set HAPROXY_BINARY)')
    process = HaproxyProcess(str(tmp_path), master_cli=True).start()
    yield process
    process.stop()


def test_reload_through_the_master_cli(haproxy_with_master_cli, backends, client, etcd_server, api, prefix,
                                       watchers):
    # The nodes' watcher runs under its own account: it reloads through the master CLI, not systemctl.
    haproxy = haproxy_with_master_cli
    port = free_port()
    one, two = backends('one'), backends('two')
    client.set(key(prefix, 'web', 'h1:one:80'), one.value)
    settings = watcher_settings(haproxy, [{'name': 'web', 'port': port}], free_port(), prefix=prefix)
    settings['haproxy'].update(reload_command=['false'], master_socket=haproxy.master_socket)
    watcher = watchers(settings, etcd_server.url, api).start()
    wait_for(lambda: reaches(port, ['one']), 15, what='backend one')
    client.set(key(prefix, 'web', 'h2:two:80'), two.value)
    wait_for(lambda: reaches(port, ['one', 'two']), 10, what='backend two')
    assert 'reload-failed' not in watcher.log()
    assert haproxy.reloads() >= 2
    proc = wait_for(lambda: runtime_command(haproxy.master_socket, 'show proc'), 10, what='the master CLI')
    assert ' master ' in proc and '[failed: 0]' in proc, proc


def test_master_cli_reports_a_configuration_that_does_not_load(haproxy_with_master_cli):
    # A configuration that fails to load (here: a port already in use) leaves the old worker serving,
    # and the reload says so instead of pretending it worked.
    haproxy = haproxy_with_master_cli
    busy = socket.socket()
    busy.bind(('127.0.0.1', 0))
    busy.listen(1)
    try:
        with open(haproxy.config, 'a') as handle:
            handle.write('frontend taken\n    bind 127.0.0.1:%d\n    mode tcp\n' % busy.getsockname()[1])
        edge = Haproxy(haproxy.config, binary=haproxy.binary, reload_command=['false'],
                       master_socket=haproxy.master_socket, command_timeout=10)
        with pytest.raises(ReloadFailed, match='could not load'):
            edge.reload()
        assert haproxy.process.poll() is None
        assert haproxy.workers()
    finally:
        busy.close()
