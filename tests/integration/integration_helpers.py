# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Helpers of the integration tests.

``Oracle`` reads and writes etcd with raw HTTP requests, independently of the
collection's client layer, so tests check the modules against the server's
own view. ``PlaybookRunner`` runs real ``ansible-playbook`` and returns the
per-task results parsed from the JSON callback.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import yaml


def _b64(text):
    return base64.b64encode(text.encode('utf-8')).decode('ascii')


def _unb64(text):
    return base64.b64decode(text or '').decode('utf-8')


def _prefix_end(prefix):
    data = bytearray(prefix.encode('utf-8'))
    data[-1] += 1
    return base64.b64encode(bytes(data)).decode('ascii')


class Oracle(object):
    """Raw-HTTP view of one etcd server for one API version."""

    def __init__(self, server, api):
        self.server = server
        self.api = api

    # -- v2 -------------------------------------------------------------------

    def _v2(self, method, key, params=None, form=None):
        path = '/v2/keys' + urllib.parse.quote(key)
        if params:
            path += '?' + urllib.parse.urlencode(params)
        body = urllib.parse.urlencode(form).encode('ascii') if form is not None else None
        headers = {'Content-Type': 'application/x-www-form-urlencoded'} if body is not None else None
        return self.server.request(method, path, body, headers=headers)

    # -- common ---------------------------------------------------------------

    def get(self, key):
        """Value of ``key`` or None."""
        if self.api == 'v2':
            status, data = self._v2('GET', key)
            if status == 404:
                return None
            assert status == 200, (status, data)
            return data['node'].get('value')
        data = self.server.v3('/kv/range', {'key': _b64(key)})
        kvs = data.get('kvs') or []
        return _unb64(kvs[0].get('value')) if kvs else None

    def index(self, key):
        if self.api == 'v2':
            status, data = self._v2('GET', key)
            assert status == 200, (status, data)
            return data['node']['modifiedIndex']
        kvs = self.server.v3('/kv/range', {'key': _b64(key)}).get('kvs') or []
        return int(kvs[0]['mod_revision'])

    def revision(self):
        """Current store index (v2) or revision (v3)."""
        if self.api == 'v2':
            req = urllib.request.Request(self.server.url + '/v2/keys/')
            with urllib.request.urlopen(req, timeout=5, context=self.server.ssl_context()) as resp:
                return int(resp.headers['X-Etcd-Index'])
        return int(self.server.v3('/kv/range', {'key': _b64('/')})['header']['revision'])

    def ttl(self, key):
        """Remaining TTL of ``key`` (None when it does not expire or does not exist)."""
        if self.api == 'v2':
            status, data = self._v2('GET', key)
            if status == 404:
                return None
            return data['node'].get('ttl')
        kvs = self.server.v3('/kv/range', {'key': _b64(key)}).get('kvs') or []
        if not kvs or not kvs[0].get('lease'):
            return None
        info = self.server.v3('/lease/timetolive', {'ID': kvs[0]['lease']})
        return int(info.get('TTL', -1))

    def put(self, key, value):
        if self.api == 'v2':
            status, data = self._v2('PUT', key, form={'value': value})
            assert status in (200, 201), (status, data)
            return data['node']['modifiedIndex']
        data = self.server.v3('/kv/put', {'key': _b64(key), 'value': _b64(value)})
        return int(data['header']['revision'])

    def is_dir(self, key):
        if self.api == 'v2':
            status, data = self._v2('GET', key)
            return status == 200 and bool(data['node'].get('dir'))
        return bool(self.keys_below(key))

    def keys_below(self, prefix):
        """``{key: value}`` of every key below ``prefix`` (recursive)."""
        if self.api == 'v2':
            status, data = self._v2('GET', prefix, params={'recursive': 'true'})
            if status == 404:
                return {}
            result = {}

            def walk(node):
                for child in node.get('nodes') or []:
                    if child.get('dir'):
                        walk(child)
                    else:
                        result[child['key']] = child.get('value')
            walk(data['node'])
            return result
        start = prefix.rstrip('/') + '/'
        data = self.server.v3('/kv/range', {'key': _b64(start), 'range_end': _prefix_end(start)})
        return dict((_unb64(kv['key']), _unb64(kv.get('value'))) for kv in data.get('kvs') or [])

    def watchers(self):
        """Number of active watchers on the server for this API."""
        if self.api == 'v2':
            return self.server.request('GET', '/v2/stats/store')[1]['watchers']
        with urllib.request.urlopen(self.server.url + '/metrics', timeout=5,
                                    context=self.server.ssl_context()) as resp:
            text = resp.read().decode('utf-8')
        match = re.search(r'^etcd_debugging_mvcc_watcher_total (\d+)', text, re.M)
        return int(match.group(1))

    def wait_for_watchers(self, count, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.watchers() >= count:
                return True
            time.sleep(0.05)
        return False


class PlaybookResult(object):
    def __init__(self, returncode, stdout, stderr, tasks):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.tasks = tasks

    def __getitem__(self, name):
        if name not in self.tasks:
            raise KeyError('no task named %r in %s\nstdout: %s\nstderr: %s'
                           % (name, sorted(self.tasks), self.stdout[-3000:], self.stderr[-3000:]))
        return self.tasks[name]

    def __contains__(self, name):
        return name in self.tasks


class PlaybookRunner(object):
    """Run tasks against localhost with the collection on ANSIBLE_COLLECTIONS_PATH."""

    def __init__(self, workdir, collections_path):
        self.workdir = workdir
        self.collections_path = collections_path
        self.counter = 0
        bindir = os.path.dirname(sys.executable)
        candidate = os.path.join(bindir, 'ansible-playbook')
        self.ansible_playbook = candidate if os.path.exists(candidate) else 'ansible-playbook'

    def run(self, tasks, defaults=None, check=False, diff=False, extra_env=None, play_vars=None):
        """Run ``tasks`` (list of dicts, each with a unique ``name``); return PlaybookResult."""
        self.counter += 1
        play = {
            'name': 'test',
            'hosts': 'localhost',
            'gather_facts': False,
            'tasks': tasks,
        }
        if defaults:
            play['module_defaults'] = {'group/etcdfleet.cluster.etcd': defaults}
        if play_vars:
            play['vars'] = play_vars
        path = os.path.join(self.workdir, 'playbook-%d.yml' % self.counter)
        with open(path, 'w') as handle:
            yaml.safe_dump([play], handle, sort_keys=False)
        env = dict(os.environ)
        env.update({
            'ANSIBLE_COLLECTIONS_PATH': self.collections_path,
            'ANSIBLE_STDOUT_CALLBACK': 'ansible.posix.json',
            'ANSIBLE_CALLBACK_RESULT_FORMAT': 'json',
            'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1',
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_RETRY_FILES_ENABLED': '0',
            'ANSIBLE_HOST_KEY_CHECKING': '0',
            'ANSIBLE_LOCAL_TEMP': os.path.join(self.workdir, 'ansible-tmp'),
            'ANSIBLE_REMOTE_TEMP': os.path.join(self.workdir, 'ansible-tmp'),
        })
        env.pop('ETCDCTL_ENDPOINTS', None)
        env.update(extra_env or {})
        cmd = [self.ansible_playbook, '-i', 'localhost,', '-c', 'local',
               '-e', 'ansible_python_interpreter=%s' % sys.executable, path]
        if check:
            cmd.append('--check')
        if diff:
            cmd.append('--diff')
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=self.workdir, timeout=300, check=False)
        tasks = {}
        text = proc.stdout
        start = text.find('\n{\n')
        if not text.startswith('{') and start >= 0:
            text = text[start + 1:]
        try:
            output = json.loads(text)
        except ValueError:
            raise AssertionError('ansible-playbook output is not JSON (rc=%s)\nstdout: %s\nstderr: %s'
                                 % (proc.returncode, proc.stdout[-5000:], proc.stderr[-5000:]))
        for play_out in output.get('plays', []):
            for task in play_out.get('tasks', []):
                name = task['task']['name']
                tasks[name] = task['hosts'].get('localhost', {})
        return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, tasks)


def start_in_thread(func, *args, **kwargs):
    """Run ``func`` in a thread; return (thread, result list)."""
    box = []

    def target():
        try:
            box.append(('ok', func(*args, **kwargs)))
        except Exception as exc:  # pylint: disable=broad-except
            box.append(('error', exc))
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def no_traceback(result):
    """Assert a task result carries no Python traceback."""
    text = repr(result)
    assert 'Traceback (most recent call last)' not in text, text
    assert 'module_stderr' not in result or not result['module_stderr'].strip(), result
    return True
