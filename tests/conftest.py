# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Make this repository importable as ansible_collections.etcdfleet.cluster."""

from __future__ import annotations

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS_DIR = os.path.join(REPO_ROOT, 'build', 'collections')
_LINK = os.path.join(COLLECTIONS_DIR, 'ansible_collections', 'etcdfleet', 'cluster')


def _ensure_link():
    if os.path.islink(_LINK) and os.path.realpath(_LINK) == os.path.realpath(REPO_ROOT):
        return
    os.makedirs(os.path.dirname(_LINK), exist_ok=True)
    if os.path.islink(_LINK):
        os.unlink(_LINK)
    elif os.path.exists(_LINK):
        return
    try:
        os.symlink(REPO_ROOT, _LINK)
    except FileExistsError:
        # another test process created it at the same moment
        pass


_ensure_link()
if COLLECTIONS_DIR not in sys.path:
    sys.path.insert(0, COLLECTIONS_DIR)
_paths = [p for p in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep) if p]
if COLLECTIONS_DIR not in _paths:
    os.environ['ANSIBLE_COLLECTIONS_PATH'] = os.pathsep.join([COLLECTIONS_DIR] + _paths)
