# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The benchmark runner's reading of ansible-playbook output."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..', 'bench'))

import run_all  # noqa: E402

OUTPUT = """\
TASK [etcdfleet.cluster.verify : Show the cluster] *****************************
ok: [core-01] =>
  msg:
  - 'machines: 3'
  - '  3f2a91c0  172.31.8.101  '

PLAY RECAP *********************************************************************
core-01                    : ok=120  changed=2    unreachable=0    failed=0    skipped=40   rescued=0    ignored=0
core-02                    : ok=98   changed=0    unreachable=0    failed=0    skipped=41   rescued=0    ignored=0
core-03                    : ok=98   changed=1    unreachable=0    failed=1    skipped=41   rescued=0    ignored=0
"""


def test_recap_sums_every_host():
    assert run_all.recap(OUTPUT) == {'ok': 316, 'changed': 3, 'unreachable': 0, 'failed': 1}


def test_recap_of_output_without_recap():
    assert run_all.recap('ERROR! the playbook could not be found') == {'ok': 0, 'changed': 0, 'unreachable': 0, 'failed': 0}


def test_site_excerpt_keeps_summary_and_recap():
    excerpt = run_all.site_excerpt(OUTPUT)
    assert "'machines: 3'" in excerpt
    assert excerpt.count('ok=') == 3
    assert 'PLAY RECAP' not in excerpt and 'TASK [' not in excerpt
