# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    # The attributes every module of the collection declares. A module states its own support
    # for check_mode, diff_mode and idempotent (or uses INFO_MODULE) and may say more in its
    # own description, which replaces the one here.
    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing it.
  diff_mode:
    description: Shows what changed (or would change, in check mode) in diff mode.
  idempotent:
    description: A second run with the same options, on an unchanged system, reports no change.
  action_group:
    support: full
    membership:
      - etcdfleet.cluster.etcd
    description: Use C(module_defaults) with C(group/etcdfleet.cluster.etcd) to set the connection options once.
'''

    # For modules that only read.
    INFO_MODULE = r'''
options: {}
attributes:
  check_mode:
    support: full
    description: Only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  idempotent:
    support: full
    description: Only reads.
'''
