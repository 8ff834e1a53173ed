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

# Facts as the setup module leaves them on the members, then node_runtime_etcd_urls seen from
# localhost in each case (task vars override the role's defaults and vars).
PLAYBOOK = '''
- hosts: etcd
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        default_ipv4: {address: "{{ member_ip }}"}
        cacheable: true
- hosts: localhost
  gather_facts: false
  vars_files: ["%(role)s/defaults/main.yml", "%(role)s/vars/main.yml"]
  tasks:
    - ansible.builtin.copy:
        content: "{{ node_runtime_etcd_urls | to_json }}"
        dest: "%(out)s/addresses.json"
        mode: "0644"
    - ansible.builtin.copy:
        content: "{{ node_runtime_etcd_urls | to_json }}"
        dest: "%(out)s/tls.json"
        mode: "0644"
      vars:
        node_runtime_etcd_tls: true
        node_runtime_etcd_client_port: 4001
    - ansible.builtin.copy:
        content: "{{ node_runtime_etcd_urls | to_json }}"
        dest: "%(out)s/given.json"
        mode: "0644"
      vars:
        node_runtime_etcd_endpoints: ["https://etcd.example.com:2379"]
- hosts: etcd
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        etcd_client_url_fact: "http://{{ inventory_hostname }}.example.com:2379"
- hosts: localhost
  gather_facts: false
  vars_files: ["%(role)s/defaults/main.yml", "%(role)s/vars/main.yml"]
  tasks:
    - ansible.builtin.copy:
        content: "{{ node_runtime_etcd_urls | to_json }}"
        dest: "%(out)s/recorded.json"
        mode: "0644"
'''


def test_etcd_urls(tmp_path):
    (tmp_path / 'inventory.yml').write_text(INVENTORY)
    (tmp_path / 'playbook.yml').write_text(PLAYBOOK % {'role': ROLE, 'out': tmp_path})
    playbook = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0')
    proc = subprocess.run([playbook, '-i', str(tmp_path / 'inventory.yml'), str(tmp_path / 'playbook.yml')],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=env, cwd=str(tmp_path), timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout

    def urls(name):
        return json.loads((tmp_path / name).read_text())

    assert urls('addresses.json') == ['http://10.0.0.1:2379', 'http://10.0.0.2:2379']
    assert urls('tls.json') == ['https://10.0.0.1:4001', 'https://10.0.0.2:4001']
    assert urls('given.json') == ['https://etcd.example.com:2379']
    assert urls('recorded.json') == ['http://m1.example.com:2379', 'http://m2.example.com:2379']
