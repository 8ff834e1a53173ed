# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The playbooks work through an SSH user with sudo: every play on the cluster's hosts becomes
root, and nothing run on the controller does (the controller's user needs no sudo)."""

from __future__ import annotations

import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
PLAYBOOKS = sorted((ROOT / 'playbooks').glob('*.yml'))
TASK_FILES = sorted((ROOT / 'roles').glob('*/tasks/*.yml')) + sorted((ROOT / 'roles').glob('*/handlers/*.yml')) \
    + sorted((ROOT / 'molecule').rglob('*.yml')) + PLAYBOOKS


class Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """YAML as Ansible writes it (``!unsafe`` and ``!vault`` read as plain strings)."""


for _tag in ('!unsafe', '!vault'):
    Loader.add_constructor(_tag, lambda loader, node: loader.construct_scalar(node))


def load(path):
    return yaml.load(path.read_text(), Loader=Loader)  # nosec: a safe loader


def plays(path):
    return [play for play in load(path) or [] if 'hosts' in play]


def tasks(items):
    """Every task of a task file or playbook, blocks and plays opened."""
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict):
            continue
        yield item
        for key in ('block', 'rescue', 'always', 'tasks', 'pre_tasks', 'post_tasks', 'handlers'):
            yield from tasks(item.get(key))


@pytest.mark.parametrize('path', PLAYBOOKS, ids=lambda p: p.name)
def test_plays_on_the_nodes_become_root(path):
    for play in plays(path):
        on_controller = play['hosts'] == 'localhost' or play.get('connection') == 'local'
        assert play.get('become', False) is (not on_controller), (path.name, play['name'])


@pytest.mark.parametrize('path', TASK_FILES, ids=lambda p: '/'.join(p.parts[-3:]))
def test_tasks_on_the_controller_do_not_become(path):
    # delegated to localhost, literally or by a template that may choose it
    for task in tasks(load(path)):
        if 'localhost' in str(task.get('delegate_to', '')):
            assert task.get('become') is False, (str(path), task.get('name'))


def test_every_playbook_is_checked():
    assert {p.name for p in PLAYBOOKS} >= {'site.yml', 'verify.yml', 'lab.yml', 'lab_ssh.yml'}
