# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Where the overlay network sits in site.yml and in the inventories the collection writes, and what
the role leaves to its handler."""

from __future__ import annotations

import pathlib

from ansible_yaml import load, tasks

ROOT = pathlib.Path(__file__).resolve().parents[3]
ROLE = ROOT / 'roles' / 'flannel'


def test_site_runs_flannel_after_the_runtime_and_before_fleet():
    plays = [play for play in load(ROOT / 'playbooks' / 'site.yml') if 'hosts' in play]
    hosts = [play['hosts'] for play in plays]
    flannel = plays[hosts.index('flannel')]
    assert flannel['name'] == 'Overlay network (flannel) on the Docker nodes'
    assert flannel['tags'] == ['flannel'] and flannel['become'] is True and flannel['force_handlers'] is True
    assert [role['role'] for role in flannel['roles']] == ['etcdfleet.cluster.flannel']
    assert hosts.index('cluster') < hosts.index('flannel') < hosts.index('fleet')


def test_lab_and_molecule_nodes_are_in_group_flannel():
    assert 'flannel' in load(ROOT / 'roles' / 'lab' / 'defaults' / 'main.yml')['lab_groups']
    platforms = load(ROOT / '.config' / 'molecule' / 'config.yml')['platforms']
    assert len(platforms) == 3 and all('flannel' in platform['groups'] for platform in platforms)


def test_docker_restarts_only_through_the_handler_flushed_at_the_end():
    main = load(ROLE / 'tasks' / 'main.yml')
    assert main[-1].get('ansible.builtin.meta') == 'flush_handlers'
    writes = [task for task in tasks(load(ROLE / 'tasks' / 'docker.yml')) if 'ansible.builtin.copy' in task]
    assert len(writes) == 1 and writes[0]['notify'] == 'flannel restart docker'
    handlers = load(ROLE / 'handlers' / 'main.yml')
    assert [h['listen'] for h in handlers] == ['flannel restart docker']
    for path in sorted((ROLE / 'tasks').glob('*.yml')):
        for task in tasks(load(path)):
            assert 'ansible.builtin.systemd_service' not in task and 'ansible.builtin.service' not in task, (
                'Docker restarted outside the handler in %s' % path.name)
