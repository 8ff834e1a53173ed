# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The playbooks work through an SSH user with sudo: every play on the cluster's hosts becomes
root, and nothing run on the controller does (the controller's user needs no sudo)."""

from __future__ import annotations

import pathlib

import pytest

from ansible_yaml import load, tasks

ROOT = pathlib.Path(__file__).resolve().parents[3]
PLAY_TASKS = ('block', 'rescue', 'always', 'tasks', 'pre_tasks', 'post_tasks', 'handlers')
PLAYBOOKS = sorted((ROOT / 'playbooks').glob('*.yml'))
TASK_FILES = sorted((ROOT / 'roles').glob('*/tasks/*.yml')) + sorted((ROOT / 'roles').glob('*/handlers/*.yml')) \
    + sorted((ROOT / 'molecule').rglob('*.yml')) + PLAYBOOKS


def plays(path):
    return [play for play in load(path) or [] if 'hosts' in play]


@pytest.mark.parametrize('path', PLAYBOOKS, ids=lambda p: p.name)
def test_plays_on_the_nodes_become_root(path):
    for play in plays(path):
        on_controller = play['hosts'] == 'localhost' or play.get('connection') == 'local'
        assert play.get('become', False) is (not on_controller), (path.name, play['name'])


@pytest.mark.parametrize('path', TASK_FILES, ids=lambda p: '/'.join(p.parts[-3:]))
def test_tasks_on_the_controller_do_not_become(path):
    # delegated to localhost, literally or by a template that may choose it
    for task in tasks(load(path), PLAY_TASKS):
        if 'localhost' in str(task.get('delegate_to', '')):
            assert task.get('become') is False, (str(path), task.get('name'))


def test_every_playbook_is_checked():
    assert {p.name for p in PLAYBOOKS} >= {'site.yml', 'verify.yml', 'lab.yml', 'lab_ssh.yml'}
