# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Write and read back N keys through etcd_key: one batch task vs one task per key.

Runs two real ansible-playbook runs against one etcd (its own throw-away etcd
on loopback unless --endpoint is given) and prints both times and the ratio:

* batch: one ``etcd_key`` task with ``keys:`` (N keys), then one
  ``etcd_key_info`` task reading the prefix back recursively;
* loop:  ``etcd_key`` in a loop of N items (one task run per key), then
  ``etcd_key_info`` in a loop of N items.

Both plays assert that every key reads back with its value.

    .venv/bin/python bench/etcd_key_batch.py [--count 1000] [--api v2|v3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests'))

from etcd_server import EtcdServer  # noqa: E402 pylint: disable=wrong-import-position

COLLECTIONS = os.path.join(REPO, 'playbooks', 'collections')

BATCH_PLAY = '''
- name: Batch form
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/etcdfleet.cluster.etcd:
      endpoints: ["{{ endpoint }}"]
      api_version: "{{ api }}"
  tasks:
    - name: Write all keys in one task
      etcdfleet.cluster.etcd_key:
        keys: "{{ items }}"
      register: written
    - name: Read them back in one task
      etcdfleet.cluster.etcd_key_info:
        key: "{{ prefix }}"
        recursive: true
      register: read
    - name: Check
      ansible.builtin.assert:
        that:
          - written.changed_keys | length == items | length
          - read.kv == items
        quiet: true
'''

LOOP_PLAY = '''
- name: One task per key
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/etcdfleet.cluster.etcd:
      endpoints: ["{{ endpoint }}"]
      api_version: "{{ api }}"
  tasks:
    - name: Write one key per task
      etcdfleet.cluster.etcd_key:
        key: "{{ item.key }}"
        value: "{{ item.value }}"
      loop: "{{ items | dict2items }}"
    - name: Read one key per task
      etcdfleet.cluster.etcd_key_info:
        key: "{{ item.key }}"
      loop: "{{ items | dict2items }}"
      register: read
    - name: Check
      ansible.builtin.assert:
        that:
          - read.results | map(attribute='value') | list == items.values() | list
        quiet: true
'''


def run_play(workdir, name, play, variables):
    play_path = os.path.join(workdir, name + '.yml')
    vars_path = os.path.join(workdir, name + '-vars.json')
    with open(play_path, 'w') as handle:
        handle.write(play)
    with open(vars_path, 'w') as handle:
        json.dump(variables, handle)
    env = dict(os.environ)
    env['ANSIBLE_COLLECTIONS_PATH'] = COLLECTIONS
    env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.default'
    env['ANSIBLE_DISPLAY_OK_HOSTS'] = '0'
    env['ANSIBLE_LOCAL_TEMP'] = os.path.join(workdir, 'tmp')
    playbook = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    if not os.path.exists(playbook):
        playbook = 'ansible-playbook'
    cmd = [playbook, '-i', 'localhost,', '-c', 'local', '-e', 'ansible_python_interpreter=%s' % sys.executable,
           '-e', '@' + vars_path, play_path]
    started = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:])
        raise SystemExit('%s play failed (rc=%s)' % (name, proc.returncode))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--count', type=int, default=1000, help='number of keys (default 1000)')
    parser.add_argument('--api', choices=['v2', 'v3'], default='v2', help='etcd API (default v2)')
    parser.add_argument('--endpoint', help='use this etcd instead of starting one on loopback')
    parser.add_argument('--json', help='also write the numbers to this file')
    args = parser.parse_args()

    server = None
    endpoint = args.endpoint
    workdir = tempfile.mkdtemp(prefix='etcd-bench-')
    try:
        if endpoint is None:
            server = EtcdServer(name='bench', workdir=os.path.join(workdir, 'etcd')).start()
            endpoint = server.url
        run = uuid.uuid4().hex[:8]
        results = {'count': args.count, 'api': args.api}
        for name, play in (('batch', BATCH_PLAY), ('loop', LOOP_PLAY)):
            prefix = '/bench/%s-%s' % (run, name)
            items = dict(('%s/key-%05d' % (prefix, i), 'value-%d' % i) for i in range(args.count))
            variables = {'endpoint': endpoint, 'api': args.api, 'prefix': prefix, 'items': items}
            results[name + '_seconds'] = round(run_play(workdir, name, play, variables), 2)
            print('%-5s %d keys written and read back: %8.2f s' % (name, args.count, results[name + '_seconds']),
                  flush=True)
        results['ratio'] = round(results['loop_seconds'] / results['batch_seconds'], 1)
        print('ratio loop/batch: %.1f' % results['ratio'])
        if args.json:
            with open(args.json, 'w') as handle:
                json.dump(results, handle, indent=2)
    finally:
        if server is not None:
            server.stop()
        subprocess.run(['rm', '-rf', workdir], check=False)


if __name__ == '__main__':
    main()
