# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The node_runtime role's vars, rendered by ansible-playbook from the role's own defaults and
vars: the etcd URLs (given endpoints, the URLs the etcd role recorded, or the members'
addresses) and the files installed on the nodes (the library and the whole daemon package tree)."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
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
    ('plain', {'node_runtime_etcd_tls': False}),
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

    sources_task = {'ansible.builtin.copy': {'content': '{{ node_runtime_sources | to_json }}',
                                             'dest': '%s/sources.json' % out, 'mode': '0644'},
                    'vars': {'role_path': str(role)}}
    expected_task = {'ansible.builtin.copy': {'content': '{{ node_runtime_expected_files | to_json }}',
                                              'dest': '%s/expected.json' % out, 'mode': '0644'},
                     'vars': {'role_path': str(role)}}

    # What the find task reports on a node: one file as this version has it, one that differs,
    # one a later version dropped, and one outside the library and the daemon package
    fleetctl = ROOT / 'agents' / 'etcdfleet_agents' / 'cli' / 'fleetctl.py'
    installed = {'files': [
        {'path': '/usr/lib/etcdfleet/etcdfleet_agents/cli/fleetctl.py', 'mode': '0644',
         'checksum': hashlib.sha1(fleetctl.read_bytes()).hexdigest()},
        {'path': '/usr/lib/etcdfleet/etcdfleet_agents/registrator.py', 'mode': '0644', 'checksum': '0' * 40},
        {'path': '/usr/lib/etcdfleet/etcdfleet_agents/old.py', 'mode': '0644', 'checksum': '1' * 40},
        {'path': '/usr/lib/etcdfleet/site/keep.py', 'mode': '0644', 'checksum': '2' * 40},
    ]}
    install_task = {'ansible.builtin.copy': {
        'content': '{{ {"members": node_runtime_archive_members, "stale": node_runtime_stale_files,'
                   ' "obsolete": node_runtime_obsolete_files} | to_json }}',
        'dest': '%s/install.json' % out, 'mode': '0644'},
        'vars': {'role_path': str(role), 'node_runtime_installed': installed}}

    def on_members(facts):
        return {'hosts': 'etcd', 'gather_facts': False, 'tasks': [{'ansible.builtin.set_fact': facts}]}

    def on_localhost(tasks):
        return {'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks,
                'vars_files': ['%s/defaults/main.yml' % role, '%s/vars/main.yml' % role]}

    return yaml.safe_dump([
        on_members({'default_ipv4': {'address': '{{ member_ip }}'}, 'cacheable': True}),
        on_localhost([urls_task(name, overrides) for name, overrides in CASES]
                     + [sources_task, expected_task, install_task]),
        on_members({'etcd_client_url_fact': 'http://{{ inventory_hostname }}.example.com:2379'}),
        on_localhost([urls_task('recorded')]),
    ])


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    """The directory the playbook wrote the rendered variables to (one run for the module)."""
    out = tmp_path_factory.mktemp('node_runtime_vars')
    (out / 'inventory.yml').write_text(INVENTORY)
    (out / 'playbook.yml').write_text(playbook(ROLE, out))
    command = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0')
    proc = subprocess.run([command, '-i', str(out / 'inventory.yml'), str(out / 'playbook.yml')],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=env, cwd=str(out), timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout
    return out


def test_etcd_urls(rendered):
    def urls(name):
        return json.loads((rendered / name).read_text())

    # TLS by default; plain http only when asked for
    assert urls('addresses.json') == ['https://10.0.0.1:2379', 'https://10.0.0.2:2379']
    assert urls('plain.json') == ['http://10.0.0.1:2379', 'http://10.0.0.2:2379']
    assert urls('tls.json') == ['https://10.0.0.1:4001', 'https://10.0.0.2:4001']
    assert urls('given.json') == ['https://etcd.example.com:2379']
    assert urls('recorded.json') == ['http://m1.example.com:2379', 'http://m2.example.com:2379']


def installed_tree(sources):
    """``{installed path: source path}`` of every file node_runtime copies, relative to the
    repository (sources) and to node_runtime_dir (installed paths)."""
    tree = {}
    for entry in sources:
        assert entry['dest'].startswith('/usr/lib/etcdfleet/'), entry['dest']
        for source in entry['files']:
            source = os.path.relpath(os.path.normpath(source), str(ROOT))
            installed = os.path.relpath(entry['dest'], '/usr/lib/etcdfleet') + '/' + os.path.basename(source)
            assert installed not in tree, installed
            tree[installed] = source
    return tree


def test_sources_copy_the_whole_daemon_package(rendered):
    """Every module of agents/etcdfleet_agents, subpackages included, lands at the same place
    under node_runtime_dir, and the library next to it (the nodes import both from there)."""
    tree = installed_tree(json.loads((rendered / 'sources.json').read_text()))
    expected = {}
    for base, dirs, files in os.walk(str(ROOT / 'agents')):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        for name in files:
            if name.endswith('.py'):
                source = os.path.relpath(os.path.join(base, name), str(ROOT))
                expected[os.path.relpath(source, 'agents')] = source
    for name in os.listdir(str(ROOT / 'plugins' / 'module_utils')):
        if name.endswith('.py'):
            expected['ansible_collections/etcdfleet/cluster/plugins/module_utils/' + name] = \
                'plugins/module_utils/' + name
    assert tree == expected
    # the subpackages are there, not only the top-level modules
    assert tree['etcdfleet_agents/store/etcd.py'] == 'agents/etcdfleet_agents/store/etcd.py'
    assert tree['etcdfleet_agents/registrator.py'] == 'agents/etcdfleet_agents/registrator.py'


def test_the_files_kept_on_the_node_are_exactly_those_installed(rendered):
    """Anything else found in those directories (a module a later version moved) is removed."""
    tree = installed_tree(json.loads((rendered / 'sources.json').read_text()))
    expected = json.loads((rendered / 'expected.json').read_text())
    assert len(expected) == len(set(expected))
    assert set(expected) == {'/usr/lib/etcdfleet/' + path for path in tree}
    assert '/usr/lib/etcdfleet/etcdfleet_agents/cli/fleetctl.py' in expected


def test_one_archive_of_what_differs(rendered):
    """The archive holds every file at its place under node_runtime_dir; a file is installed when
    it is missing or differs on the node; only files of the library and the daemon package that
    this version lacks are removed."""
    tree = installed_tree(json.loads((rendered / 'sources.json').read_text()))
    install = json.loads((rendered / 'install.json').read_text())
    members = {name: os.path.relpath(os.path.normpath(source), str(ROOT)) for name, source in install['members']}
    assert members == tree
    stale = set(install['stale'])
    assert '/usr/lib/etcdfleet/etcdfleet_agents/registrator.py' in stale
    assert '/usr/lib/etcdfleet/etcdfleet_agents/cli/fleetctl.py' not in stale
    assert len(stale) == len(tree) - 1
    assert install['obsolete'] == ['/usr/lib/etcdfleet/etcdfleet_agents/old.py']
