# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Every molecule play that runs the collection's etcd modules on a node connects them as the node's
daemons do (module_defaults of the action group from node_runtime_etcd): a module left on its
default endpoint, plain http on 127.0.0.1, fails against the secure default."""

from __future__ import annotations

import pathlib
import re

import pytest

from ansible_yaml import load, tasks

ROOT = pathlib.Path(__file__).resolve().parents[3]
MOLECULE = ROOT / 'molecule'
MODULES = re.compile(r'etcdfleet\.cluster\.(fleet_unit|fleet_info|etcd_key|etcd_key_info|etcd_cluster_info|flannel_config)')
PLAYBOOKS = sorted(p for p in MOLECULE.glob('*/*.yml') if p.name != 'molecule.yml')


def unconnected(items):
    """Names of the tasks (in included resource files too) that run a module with no connection set."""
    for task in tasks(items):
        if any(MODULES.fullmatch(key) for key in task) and 'module_defaults' not in task:
            yield task.get('name')
        included = task.get('ansible.builtin.include_tasks', '')
        included = str(included.get('file', '') if isinstance(included, dict) else included)
        if 'resources/tasks/' in included:
            yield from unconnected(load(MOLECULE / 'resources' / 'tasks' / included.split('resources/tasks/')[1]))


@pytest.mark.parametrize('path', PLAYBOOKS, ids=lambda p: '/'.join(p.parts[-2:]))
def test_plays_connect_the_modules_like_the_nodes(path):
    for play in load(path) or []:
        if 'hosts' not in play or 'module_defaults' in play:
            continue
        names = list(unconnected(play.get('pre_tasks', []) + play.get('tasks', []) + play.get('post_tasks', [])))
        assert not names, (path.name, play['name'], names)


def test_stories_are_found():
    assert len(PLAYBOOKS) > 20
