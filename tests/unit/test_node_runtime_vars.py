# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The node_runtime role's etcd URLs, rendered by ansible-playbook from the role's own defaults
and vars: given endpoints, the URLs the etcd role recorded, or the members' addresses."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLE = ROOT / 'roles' / 'node_runtime'

INVENTORY = '''
all:
  hosts:
    localhost: {ansible_connection: local, ansible_python_interpreter: "{{ ansible_playbook_python }}"}
  children:
    etcd:
      hosts:
        m1: {member_ip: 10.0.0.1}
        m2: {member_ip: 10.0.0.2}
'''

# Each case: the file node_runtime_etcd_urls is written to, and the variables that override the
# role's defaults and vars (task vars) in that case.
CASES = [
    ('addresses', {}),
    ('tls', {'node_runtime_etcd_tls': True, 'node_runtime_etcd_client_port': 4001}),
    ('given', {'node_runtime_etcd_endpoints': ['https://etcd.example.com:2379']}),
]


def playbook(role, out):
    """Facts as the setup module leaves them on the members, then the URLs seen from localhost in
    each case; last, the URLs the etcd role records (etcd_client_url_fact) take precedence."""
    def urls_task(name, overrides=None):
        task = {'ansible.builtin.copy': {'content': '{{ node_runtime_etcd_urls | to_json }}',
                                         'dest': '%s/%s.json' % (out, name), 'mode': '0644'}}
        if overrides:
            task['vars'] = overrides
        return task

    def on_members(facts):
        return {'hosts': 'etcd', 'gather_facts': False, 'tasks': [{'ansible.builtin.set_fact': facts}]}

    def on_localhost(tasks):
        return {'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks,
                'vars_files': ['%s/defaults/main.yml' % role, '%s/vars/main.yml' % role]}

    return yaml.safe_dump([
        on_members({'default_ipv4': {'address': '{{ member_ip }}'}, 'cacheable': True}),
        on_localhost([urls_task(name, overrides) for name, overrides in CASES]),
        on_members({'etcd_client_url_fact': 'http://{{ inventory_hostname }}.example.com:2379'}),
        on_localhost([urls_task('recorded')]),
    ])


def test_etcd_urls(tmp_path):
    (tmp_path / 'inventory.yml').write_text(INVENTORY)
    (tmp_path / 'playbook.yml').write_text(playbook(ROLE, tmp_path))
    command = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0')
    proc = subprocess.run([command, '-i', str(tmp_path / 'inventory.yml'), str(tmp_path / 'playbook.yml')],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=env, cwd=str(tmp_path), timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout

    def urls(name):
        return json.loads((tmp_path / name).read_text())

    assert urls('addresses.json') == ['http://10.0.0.1:2379', 'http://10.0.0.2:2379']
    assert urls('tls.json') == ['https://10.0.0.1:4001', 'https://10.0.0.2:4001']
    assert urls('given.json') == ['https://etcd.example.com:2379']
    assert urls('recorded.json') == ['http://m1.example.com:2379', 'http://m2.example.com:2379']
