# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Playbooks and task files read as data, for the tests that check what they declare."""

from __future__ import annotations

import yaml


class Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """YAML as Ansible writes it (``!unsafe`` and ``!vault`` read as plain strings)."""


for _tag in ('!unsafe', '!vault'):
    Loader.add_constructor(_tag, lambda loader, node: loader.construct_scalar(node))


def load(path):
    return yaml.load(path.read_text(), Loader=Loader)  # nosec: a safe loader


def tasks(items, keys=('block', 'rescue', 'always')):
    """Every task in ITEMS (a task list, or a playbook with ``keys`` naming its task lists), the
    tasks of blocks included."""
    if not isinstance(items, list):
        return
    for item in items:
        if isinstance(item, dict):
            yield item
            for key in keys:
                yield from tasks(item.get(key), keys)
