# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make this repository importable as ``ansible_collections.etcdfleet.cluster``."""

from __future__ import annotations

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collection_root():
    # Running inside an ansible_collections/<ns>/<name> tree already (ansible-test).
    parts = REPO_ROOT.split(os.sep)
    if len(parts) >= 3 and parts[-3] == 'ansible_collections':
        return os.sep.join(parts[:-3])
    collections = os.path.join(REPO_ROOT, 'build', 'collections')
    namespace_dir = os.path.join(collections, 'ansible_collections', 'etcdfleet')
    link = os.path.join(namespace_dir, 'cluster')
    os.makedirs(namespace_dir, exist_ok=True)
    if not os.path.islink(link) or os.path.realpath(link) != REPO_ROOT:
        if os.path.islink(link):
            os.unlink(link)
        tmp = '%s.%d.tmp' % (link, os.getpid())
        os.symlink(REPO_ROOT, tmp)
        os.replace(tmp, link)
    return collections


COLLECTIONS_PATH = _collection_root()
if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)
_existing = os.environ.get('ANSIBLE_COLLECTIONS_PATH')
if not _existing or COLLECTIONS_PATH not in _existing.split(os.pathsep):
    os.environ['ANSIBLE_COLLECTIONS_PATH'] = os.pathsep.join(
        p for p in (COLLECTIONS_PATH, _existing) if p)
