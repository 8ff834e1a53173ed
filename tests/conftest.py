# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make this repository importable as ``ansible_collections.etcdfleet.cluster``, and its node
daemons as ``etcdfleet_agents`` (as on the nodes, where PYTHONPATH holds both)."""

from __future__ import annotations

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collections_path():
    # Inside an ansible_collections/<namespace>/<name> tree already (ansible-test's copy).
    parts = REPO_ROOT.split(os.sep)
    if len(parts) >= 3 and parts[-3] == 'ansible_collections':
        return os.sep.join(parts[:-3])
    # The checkout links itself in as a playbook-adjacent collection.
    return os.path.join(REPO_ROOT, 'playbooks', 'collections')


COLLECTIONS_PATH = _collections_path()
if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)
AGENTS_PATH = os.path.join(REPO_ROOT, 'agents')
if AGENTS_PATH not in sys.path:
    sys.path.insert(0, AGENTS_PATH)
_existing = os.environ.get('ANSIBLE_COLLECTIONS_PATH')
if not _existing or COLLECTIONS_PATH not in _existing.split(os.pathsep):
    os.environ['ANSIBLE_COLLECTIONS_PATH'] = os.pathsep.join(
        p for p in (COLLECTIONS_PATH, _existing) if p)

# The node daemons (agents/etcdfleet_agents) import the collection as installed on the nodes.
AGENTS_PATH = os.path.join(REPO_ROOT, 'agents')
if AGENTS_PATH not in sys.path:
    sys.path.insert(0, AGENTS_PATH)
