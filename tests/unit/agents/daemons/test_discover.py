# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The discover watcher without etcd or HAProxy: settings, template context, the role's template,
the update logic (with a recording stand-in for HAProxy) and the prefix mirror's debounce."""

from __future__ import annotations

import logging
import os
import re
import threading
import time

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdConnectionError,
    EtcdEvent,
    EtcdKeyNotFound,
    EtcdNode,
)
from etcdfleet_agents.daemons import discover
from etcdfleet_agents.haproxy.apply import INVALID, RELOAD_FAILED, RELOADED, RENDER_FAILED, UNCHANGED, Updater, digest
from etcdfleet_agents.haproxy.process import ConfigInvalid, ReloadFailed
from etcdfleet_agents.haproxy.render import Template, TemplateError, haproxy_ident, haproxy_quote
from etcdfleet_agents.runtime import SettingsError
from hostile_names import HOSTILE
from etcdfleet_agents.store.etcd_mirror import PrefixMirror, WatchFailed

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
TEMPLATE = os.path.join(ROOT, 'roles', 'node_runtime', 'files', 'haproxy.cfg.j2')


def settings(**overrides):
    data = {'template': TEMPLATE, 'services': [{'name': 'web', 'port': 8000, 'mode': 'http'}]}
    data.update(overrides)
    return discover.load_settings(data=data)


def render(values, **overrides):
    daemon = discover.DockerDiscover(settings=settings(**overrides))
    return daemon.updater.render(daemon.context_for(values))


def lines_of(section, text):
    """The lines of one section (``frontend x`` / ``backend x`` / ``listen x``) of a configuration."""
    result = []
    inside = False
    for line in text.splitlines():
        if line and not line.startswith(' '):
            inside = line.strip() == section
            continue
        if inside and line.strip() and not line.strip().startswith('#'):
            result.append(line.strip())
    return result


# -- settings -------------------------------------------------------------------------------------

def test_defaults_fill_everything():
    result = discover.load_settings(data={})
    assert result['prefix'] == '/services'
    assert result['haproxy']['reload_command'] == ['systemctl', 'reload-or-restart', 'haproxy.service']
    assert result['stats']['bind'] == '127.0.0.1:1936'
    assert result['exposure'].services == ()
    assert result['exposure'].reserved_ports == (1936,)


@pytest.mark.parametrize('data, message', [
    ({'services': [{'name': 'web', 'port': 1936}]}, 'port 1936 is reserved'),
    ({'services': [{'name': 'web', 'port': 80, 'mode': 'udp'}]}, "mode must be one of http, tcp, got 'udp'"),
    ({'services': [{'name': 'a', 'port': 80}, {'name': 'b', 'port': 80}]}, "already used by service 'a'"),
    ({'servics': []}, 'unknown setting(s) servics'),
    ({'stats': {'bnd': 'x'}}, 'stats: unknown setting(s) bnd'),
    ({'stats': {'bind': '0.0.0.0'}}, 'stats.bind must end with :<port 1-65535>'),
    ({'stats': {'password': 'x'}}, 'stats.password is set but stats.user is not'),
    ({'stats': {'user': 'a:b', 'password': 'x'}}, "stats.user must not contain ':'"),
    ({'stats': {'uri': 'stats'}}, "stats.uri must start with '/'"),
    ({'check': {'inter': 'often'}}, "check.inter must be an HAProxy time (like 500ms, 2s, 1m), got 'often'"),
    ({'check': {'rise': 0}}, 'check.rise must be an integer >= 1, got 0'),
    ({'timeouts': {'server': '1 minute'}}, 'timeouts.server must be an HAProxy time'),
    ({'debounce': 1.0, 'max_delay': 0.5}, 'max_delay (0.5) must not be shorter than debounce (1.0)'),
    ({'debounce': 'fast'}, "debounce must be a number >= 0.0, got 'fast'"),
    ({'prefix': '/'}, 'prefix must not be the root'),
    ({'haproxy': {'reload_command': 'systemctl reload haproxy'}}, 'haproxy.reload_command must be a list of strings'),
    ({'stats': {'realm': 'a\nb'}}, 'stats.realm must be one line'),
    ({'rule': {'pattern': '(', 'pattern_type': 'regex'}, 'services': []}, "rule: pattern '(' is not a valid regular expression"),
    ({'default_mode': 'udp'}, "default_mode must be one of http, tcp, got 'udp'"),
    ({'stats': {'bind': '0.0.0.0:1936'}}, "stats.bind '0.0.0.0:1936' is not a loopback address"),
    ({'stats': {'bind': '*:1936', 'user': 'admin'}}, "stats.bind '*:1936' is not a loopback address"),
    ({'stats': {'bind': ':1936'}}, "stats.bind ':1936' is not a loopback address"),
    ({'stats': {'bind': '[::]:1936'}}, "stats.bind '[::]:1936' is not a loopback address"),
    ({'stats': {'bind': 'node-1:1936'}}, "stats.bind 'node-1:1936' is not a loopback address"),
])
def test_bad_settings_are_named(data, message):
    with pytest.raises(SettingsError) as error:
        discover.load_settings(data=data)
    assert message in str(error.value)


def test_settings_file_errors(tmp_path):
    with pytest.raises(SettingsError, match='cannot read the settings file'):
        discover.load_settings(str(tmp_path / 'missing.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text('{"services": [')
    with pytest.raises(SettingsError, match='is not valid JSON'):
        discover.load_settings(str(bad))


@pytest.mark.parametrize('stats', [
    {'bind': '127.0.0.1:1936'}, {'bind': '127.0.0.5:1937'}, {'bind': 'localhost:1936'}, {'bind': '[::1]:1936'},
    {'bind': '0.0.0.0:1936', 'user': 'admin', 'password': 'secret'},
    {'bind': '10.0.0.1:1936', 'enabled': False},
])
def test_stats_page_beyond_loopback_only_with_a_password(stats):
    assert discover.load_settings(data={'stats': stats})['stats']['bind'] == stats['bind']


def test_stats_port_free_when_stats_are_off():
    result = discover.load_settings(data={'stats': {'enabled': False}, 'services': [{'name': 'a', 'port': 1936}]})
    assert result['exposure'].services[0].port == 1936


# -- the role's template --------------------------------------------------------------------------

VALUES = {
    '/services/web/core-01:kappa-test-1:8000': '10.0.0.1:32771',
    '/services/web/core-02:kappa-test-2:8000': '{"host": "10.0.0.2", "port": 32772}',
    '/services/web/core-03:kappa-test-3:8000': '[fd00::3]:32773',
}


def test_servers_round_robin_with_health_checks():
    text = render(VALUES)
    backend = lines_of('backend be_web_8000', text)
    assert 'balance roundrobin' in backend
    assert 'mode http' in backend
    servers = [line for line in backend if line.startswith('server ')]
    assert [line.split()[2] for line in servers] == ['10.0.0.1:32771', '10.0.0.2:32772', '[fd00::3]:32773']
    for line in servers:
        assert line.endswith('check inter 2s rise 2 fall 2'), line
    assert lines_of('frontend fe_web_8000', text) == [
        'bind *:8000', 'mode http', 'option httplog', 'option forwardfor', 'default_backend be_web_8000']
    defaults = lines_of('defaults', text)
    assert 'retries 3' in defaults and 'option redispatch 1' in defaults
    assert 'load-server-state-from-file global' in defaults
    assert 'server-state-file /var/lib/haproxy/server-state' in lines_of('global', text)
    assert 'stats socket /run/haproxy/admin.sock mode 660 level admin expose-fd listeners' in lines_of('global', text)


def test_http_services_retry_idempotent_requests_only():
    backend = lines_of('backend be_web_8000', render(VALUES))
    assert 'retry-on conn-failure empty-response response-timeout' in backend
    assert 'http-request disable-l7-retry if !METH_GET !METH_HEAD !METH_OPTIONS' in backend
    tcp_text = render({'/services/db/a': '10.0.0.9:5432'}, services=[{'name': 'db', 'port': 5432}])
    tcp = lines_of('backend be_db_5432', tcp_text)
    assert 'mode tcp' in tcp
    assert not [line for line in tcp if 'retry-on' in line or 'http-request' in line]


def test_render_does_not_depend_on_key_order():
    reordered = dict(reversed(list(VALUES.items())))
    assert render(VALUES) == render(reordered)


def test_service_without_instances_still_listens():
    text = render({})
    assert lines_of('frontend fe_web_8000', text)[0] == 'bind *:8000'
    assert [line for line in lines_of('backend be_web_8000', text) if line.startswith('server')] == []


def test_garbage_is_skipped_with_one_warning_each(caplog):
    values = dict(VALUES)
    values.update({
        '/services/web/bad-1': 'nonsense',
        '/services/web/bad-2': '10.0.0.1:70000',
        '/services/web/bad-3': '{"host": "10.0.0.1"',
        '/services/web/x/y': '10.0.0.1:1',
        '/services/web/inject': '10.0.0.1:80\n    server evil 6.6.6.6:80',
    })
    daemon = discover.DockerDiscover(settings=settings())
    with caplog.at_level(logging.WARNING):
        context = daemon.context_for(values)
        daemon.context_for(values)
    assert [len(s['servers']) for s in context['services']] == [3]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 5, warnings
    assert all(w.startswith('skipped key') for w in warnings)
    assert 'evil' not in daemon.updater.render(context)


def test_server_names_are_valid_unique_and_follow_the_address():
    text = render(VALUES)
    names = re.findall(r'^    server (\S+) ', text, re.M)
    assert len(set(names)) == 3
    assert all(re.match(r'^[A-Za-z0-9_.:-]+$', n) for n in names), names
    moved = dict(VALUES)
    moved['/services/web/core-01:kappa-test-1:8000'] = '10.0.0.1:40000'
    moved_names = re.findall(r'^    server (\S+) ', render(moved), re.M)
    assert moved_names[0] != names[0] and moved_names[1:] == names[1:]


def test_naming_rule_exposes_matching_services():
    values = {'/services/app-8080/a': '10.0.0.1:1000', '/services/app-9090/a': '10.0.0.2:2000',
              '/services/other/a': '10.0.0.3:3000', '/services/app-x/a': '10.0.0.4:4000'}
    text = render(values, services=[], rule={'pattern': 'app-*', 'base_port': 10000, 'mode': 'http'})
    assert re.findall(r'^frontend (\S+)', text, re.M) == ['fe_app-8080_18080', 'fe_app-9090_19090']
    assert 'bind *:18080' in lines_of('frontend fe_app-8080_18080', text)


def test_service_names_are_valid_identifiers_as_they_are():
    text = render({'/services/my.svc_A-1/a': '10.0.0.1:1'}, services=[{'name': 'my.svc_A-1', 'port': 9000}])
    assert 'frontend fe_my.svc_A-1_9000' in text and 'backend be_my.svc_A-1_9000' in text
    with pytest.raises(SettingsError) as err:
        render({}, services=[{'name': 'my@svc', 'port': 9000}])
    assert "'my@svc'" in str(err.value)


def test_stats_section_bound_and_protected():
    text = render({}, stats={'bind': '0.0.0.0:1936', 'user': 'admin', 'password': "it's $ecret", 'uri': '/s'})
    stats = lines_of('listen stats', text)
    assert 'bind 0.0.0.0:1936' in stats and 'stats uri /s' in stats
    assert 'stats auth "admin:it\'s \\$ecret"' in stats
    assert not [line for line in lines_of('listen stats', render({})) if line.startswith('stats auth')]
    assert 'listen stats' not in render({}, stats={'enabled': False})


def test_optional_global_settings_drop_out():
    text = render({}, haproxy={'user': '', 'group': '', 'chroot': '', 'log': '', 'runtime_socket': '',
                               'server_state_file': ''})
    assert lines_of('global', text) == ['maxconn 4096']
    assert 'load-server-state-from-file global' not in text


@pytest.mark.parametrize('what', sorted(HOSTILE))
def test_hostile_keys_never_reach_the_configuration(what):
    name = HOSTILE[what]
    values = {'/services/web-81/h:a:80': '10.0.0.1:80',
              '/services/%s-82/h:a:80' % name: '10.0.0.2:80',
              '/services/web-83/%s' % name: '10.0.0.3:80'}
    text = render(values, services=[], rule={'pattern': '*'})
    assert 'listen pwn' not in text and 'bind *:9999' not in text
    assert '10.0.0.1:80' in text and '10.0.0.2' not in text and '10.0.0.3' not in text


def test_template_expressions_cannot_break_a_line(tmp_path):
    template = tmp_path / 'user.cfg.j2'
    template.write_text("global\n    # {{ vars.note }}\n")
    text = render({}, template=str(template), vars={'note': 'x\nlisten pwn\r\n  bind *:9999'})
    assert text.count('\n') == 2, text
    assert not any(line.startswith('listen') or line.strip().startswith('bind') for line in text.splitlines())


def test_quote_and_ident():
    assert haproxy_quote('plain') == "'plain'"
    assert haproxy_quote('a b$c') == "'a b$c'"
    assert haproxy_quote('it\'s "x" \\ $y') == '"it\'s \\"x\\" \\\\ \\$y"'
    with pytest.raises(ValueError):
        haproxy_quote('two\nlines')
    assert haproxy_ident('core-01:kappa_1.x') == 'core-01:kappa_1.x'
    assert haproxy_ident('a b/c@d') == 'a_b_c_d'
    assert haproxy_ident('') == '_'


# -- templates ------------------------------------------------------------------------------------

def test_template_errors_name_the_file_and_problem(tmp_path):
    with pytest.raises(TemplateError, match='cannot read the template'):
        Template(str(tmp_path / 'missing.j2')).render({})
    broken = tmp_path / 'broken.j2'
    broken.write_text('global\n{% for x in %}\n')
    with pytest.raises(TemplateError, match=r'broken.j2 line 2: '):
        Template(str(broken)).render({})
    undefined = tmp_path / 'undefined.j2'
    undefined.write_text('global\n    maxconn {{ nothing }}\n')
    with pytest.raises(TemplateError, match="'nothing' is undefined"):
        Template(str(undefined)).render({})
    newline = tmp_path / 'newline.j2'
    newline.write_text('    stats auth {{ value | haproxy_quote }}\n')
    with pytest.raises(TemplateError, match='must be one line'):
        Template(str(newline)).render({'value': 'a\nb'})


def test_template_is_read_again_on_every_render(tmp_path):
    path = tmp_path / 't.j2'
    path.write_text('one {{ x }}')
    template = Template(str(path))
    assert template.render({'x': 1}) == 'one 1\n'
    path.write_text('two {{ x }}')
    assert template.render({'x': 1}) == 'two 1\n'


# -- the update logic -----------------------------------------------------------------------------

class RecordingHaproxy(object):
    """Stands in for etcdfleet_agents.haproxy.process.Haproxy: keeps the live text in memory, records calls."""

    def __init__(self, live=None, applied=None):
        self.live = live
        self.calls = []
        self.reject = None
        self.fail_reload = False
        # digest of what HAProxy runs; a live file given here counts as running unless told
        self.running = applied if applied is not None else (digest(live) if live is not None else None)

    def current(self):
        return self.live

    def applied(self):
        return self.running

    def mark_applied(self, text_digest):
        self.running = text_digest

    def check(self, text):
        self.calls.append('check')
        if self.reject:
            raise ConfigInvalid('haproxy -c rejected the configuration (exit 1): %s' % self.reject,
                                path='/x.rejected')
        return text

    def install(self, candidate):
        self.calls.append('install')
        self.live = candidate

    def save_server_state(self):
        self.calls.append('save')
        return True

    def reload(self):
        self.calls.append('reload')
        if self.fail_reload:
            raise ReloadFailed('systemctl reload-or-restart haproxy.service failed (exit 1): nope')


def updater_for(tmp_path, source='value {{ v }}'):
    path = tmp_path / 'u.j2'
    path.write_text(source)
    return Updater(Template(str(path)), RecordingHaproxy()), path


def test_apply_installs_then_reloads_and_skips_unchanged(tmp_path):
    updater, dummy = updater_for(tmp_path)
    first = updater.apply({'v': 1})
    assert first.action == RELOADED and first.ok and first.state_saved
    assert updater.haproxy.calls == ['check', 'install', 'save', 'reload']
    second = updater.apply({'v': 1})
    assert second.action == UNCHANGED and second.digest == first.digest
    assert updater.haproxy.calls == ['check', 'install', 'save', 'reload']
    third = updater.apply({'v': 2})
    assert third.action == RELOADED and third.digest != first.digest


def test_render_failure_and_rejected_config_install_nothing(tmp_path):
    updater, path = updater_for(tmp_path)
    updater.apply({'v': 1})
    live = updater.haproxy.live
    path.write_text('{% if %}')
    result = updater.apply({'v': 2})
    assert result.action == RENDER_FAILED and not result.ok and 'u.j2 line 1' in result.message
    path.write_text('value {{ v }}')
    updater.haproxy.reject = "unknown keyword 'bogus'"
    result = updater.apply({'v': 3})
    assert result.action == INVALID and "unknown keyword 'bogus'" in result.message
    assert updater.haproxy.live == live
    assert updater.haproxy.calls.count('install') == 1


def test_failed_reload_is_retried_even_when_unchanged(tmp_path):
    updater, dummy = updater_for(tmp_path)
    updater.haproxy.fail_reload = True
    assert updater.apply({'v': 1}).action == RELOAD_FAILED
    updater.haproxy.fail_reload = False
    assert updater.apply({'v': 1}).action == RELOADED
    assert updater.apply({'v': 1}).action == UNCHANGED
    assert updater.haproxy.calls.count('reload') == 2


def test_failed_reload_before_a_restart_is_made_after_it(tmp_path):
    """A new Updater (a restarted daemon) finds the file installed but not what HAProxy runs."""
    updater, dummy = updater_for(tmp_path)
    updater.haproxy.fail_reload = True
    assert updater.apply({'v': 1}).action == RELOAD_FAILED
    restarted = Updater(updater.template, updater.haproxy)
    updater.haproxy.fail_reload = False
    assert restarted.apply({'v': 1}).action == RELOADED
    assert restarted.apply({'v': 1}).action == UNCHANGED


def test_daemon_logs_a_failing_reload_once_and_its_recovery_once(tmp_path, caplog):
    daemon = discover.DockerDiscover(settings=settings(status_file=''))
    daemon.updater.haproxy = RecordingHaproxy()
    daemon.updater.haproxy.fail_reload = True
    with caplog.at_level(logging.INFO):
        for dummy in range(3):
            daemon.update(VALUES)
        daemon.updater.haproxy.fail_reload = False
        daemon.update(VALUES)
        daemon.update(VALUES)
    messages = [r.getMessage() for r in caplog.records]
    assert sum('reload-failed' in m for m in messages) == 1, messages
    assert sum(m.startswith('recovered after 3 failed') for m in messages) == 1, messages
    assert messages[-1].endswith('no reload')


def test_daemon_update_logs_one_line_and_writes_status(tmp_path, caplog):
    status_file = tmp_path / 'status.json'
    daemon = discover.DockerDiscover(settings=settings(status_file=str(status_file)))
    daemon.updater.haproxy = RecordingHaproxy()
    with caplog.at_level(logging.INFO):
        daemon.update(VALUES)
        daemon.update(VALUES)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith('reloaded HAProxy with configuration ') and '(web:8000=3)' in messages[0]
    assert messages[1].endswith('unchanged (web:8000=3); no reload')
    import json
    status = json.loads(status_file.read_text())
    assert status['ok'] is True and status['action'] == 'unchanged'
    assert status['services']['web']['servers'] == ['10.0.0.1:32771', '10.0.0.2:32772', '[fd00::3]:32773']


# -- the prefix mirror ----------------------------------------------------------------------------

def node(key, value=None, children=None, revision=None):
    return EtcdNode(key, value=value, dir=children is not None, children=children, revision=revision)


class FakeClient(object):
    def __init__(self, tree=None, revision=10, missing=False):
        self.tree = tree or {}
        self.rev = revision
        self.missing = missing
        self.events = []
        self.fail = None
        self.watch_args = None

    def get(self, key, recursive=False):
        if self.missing:
            raise EtcdKeyNotFound('not found', key=key, revision=self.rev)
        return node(key, children=[node(k, v) for k, v in self.tree.items()], revision=self.rev)

    def revision(self, key='/'):
        return self.rev

    def watch_iter(self, key, recursive=False, index=None, idle_timeout=None, resync=True):
        self.watch_args = (key, recursive, index, resync)
        for item in self.events:
            if isinstance(item, float):
                time.sleep(item)
                continue
            yield item
        if self.fail is not None:
            raise self.fail
        while True:
            time.sleep(0.05)
            yield None


def event(action, key, value=None, is_dir=False):
    return EtcdEvent(action, key, node(key, value, children=[] if is_dir else None))


def test_mirror_reads_then_watches_from_the_next_revision():
    client = FakeClient({'/s/a/1': '10.0.0.1:1'}, revision=41)
    mirror = PrefixMirror(client, '/s')
    assert mirror.load() == {'/s/a/1': '10.0.0.1:1'}
    mirror.start()
    time.sleep(0.05)
    assert client.watch_args == ('/s', True, 42, True)
    mirror.close()
    missing = PrefixMirror(FakeClient(missing=True, revision=7), '/s')
    assert missing.load() == {} and missing.revision == 7


def test_mirror_applies_events():
    mirror = PrefixMirror(FakeClient(), '/s')
    mirror.values = {'/s/a/1': 'x', '/s/a/2': 'y', '/s/b/1': 'z'}
    assert mirror._apply(event('set', '/s/a/1', 'x')) is False          # same value again
    assert mirror._apply(event('set', '/s/a/1', 'x2')) is True
    assert mirror._apply(event('create', '/s/c', is_dir=True)) is False  # a new directory
    assert mirror._apply(event('expire', '/s/b/1')) is True
    assert mirror._apply(event('delete', '/s/a')) is True                # a whole directory
    assert mirror.values == {}
    assert mirror._apply(event('delete', '/s/nothing')) is False
    fresh = EtcdEvent('resync', '/s', node('/s', children=[node('/s/d/1', 'w')]))
    assert mirror._apply(fresh) is True and mirror.values == {'/s/d/1': 'w'}
    assert mirror._apply(EtcdEvent('resync', '/s', None)) is True and mirror.values == {}


def test_mirror_coalesces_a_burst():
    client = FakeClient()
    client.events = [event('set', '/s/a/%d' % i, 'v%d' % i) for i in range(5)] + [0.5, event('set', '/s/a/9', 'w')]
    mirror = PrefixMirror(client, '/s')
    mirror.load()
    mirror.start()
    started = time.monotonic()
    assert mirror.wait(debounce=0.2, max_delay=2.0) == 5
    first = time.monotonic() - started
    assert sorted(mirror.values) == ['/s/a/%d' % i for i in range(5)]
    assert mirror.wait(debounce=0.2, max_delay=2.0) == 1
    assert '/s/a/9' in mirror.values
    assert 0.19 < first < 1.5, first  # at least the quiet time; the upper bound only guards against hanging
    assert mirror.wait(debounce=0.2, max_delay=2.0, timeout=0.3) == 0
    mirror.close()


def test_mirror_max_delay_bounds_a_long_burst():
    client = FakeClient()
    client.events = []
    for i in range(40):
        client.events += [event('set', '/s/a/%d' % i, 'v'), 0.05]
    mirror = PrefixMirror(client, '/s')
    mirror.load()
    mirror.start()
    started = time.monotonic()
    changes = mirror.wait(debounce=0.2, max_delay=0.6)
    elapsed = time.monotonic() - started
    assert 0.59 < elapsed < 1.8, elapsed
    assert 5 < changes < 40
    mirror.close()


def test_mirror_interrupt_and_failure():
    mirror = PrefixMirror(FakeClient(), '/s')
    mirror.load()
    mirror.start()
    threading.Timer(0.1, mirror.interrupt).start()
    assert mirror.wait() is None
    mirror.close()
    client = FakeClient()
    client.fail = EtcdConnectionError('cannot reach etcd')
    failing = PrefixMirror(client, '/s')
    failing.load()
    failing.start()
    with pytest.raises(WatchFailed, match='cannot reach etcd'):
        failing.wait(timeout=5)
