#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: etcd_cluster_info
short_description: Members, leader, health and version of an etcd cluster
description:
  - Reports what C(etcdctl member list) and C(etcdctl cluster-health) tell - the members with
    their URLs, which one leads, whether each answers as healthy, and the versions.
  - Each member is asked through its first advertised client URL, so those URLs must be
    reachable from the host running the module.
  - The module does not fail on an unhealthy cluster; test RV(healthy) (for example with
    C(until)) to wait for health.
version_added: 0.1.0
author:
  - etcdfleet maintainers (@etcdfleet)
extends_documentation_fragment:
  - etcdfleet.cluster.etcd
  - etcdfleet.cluster.attributes.info_module
  - etcdfleet.cluster.attributes
options: {}
seealso:
  - module: etcdfleet.cluster.etcd_key_info
'''

EXAMPLES = r'''
- name: Wait until every member is healthy
  etcdfleet.cluster.etcd_cluster_info:
    endpoints: "{{ groups['etcd'] | map('extract', hostvars, 'ansible_host') | map('regex_replace', '^(.*)$', 'http://\\1:2379') | list }}"
  register: cluster
  until: cluster.healthy
  retries: 30
  delay: 2

- name: Show the leader
  ansible.builtin.debug:
    msg: "{{ cluster.leader_name }} leads {{ cluster.members | length }} members"
'''

RETURN = r'''
healthy:
  description: True when a leader is known and every member reports itself healthy.
  returned: always
  type: bool
  sample: true
leader:
  description: Member ID (hex) of the leader, null when no member knows one.
  returned: always
  type: str
  sample: 8e9e05c52164694d
leader_name:
  description: Name of the leader.
  returned: always
  type: str
  sample: etcd1
cluster_id:
  description: Cluster ID (hex).
  returned: always
  type: str
  sample: cdf818194e3a8c32
endpoint:
  description: The endpoint that answered.
  returned: always
  type: str
  sample: http://10.0.0.1:2379
api_version:
  description: The API used.
  returned: always
  type: str
  sample: v3
version:
  description: Versions reported by the endpoint that answered.
  returned: always
  type: dict
  contains:
    server:
      description: etcd server version.
      type: str
      sample: 3.4.23
    cluster:
      description: Cluster version (the lowest common version of the members).
      type: str
      sample: 3.4.0
members:
  description: One entry per member.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Member ID (hex).
      type: str
      sample: 8e9e05c52164694d
    name:
      description: Member name (empty until the member has started).
      type: str
      sample: etcd1
    peer_urls:
      description: Peer URLs.
      type: list
      elements: str
      sample: [http://10.0.0.1:2380]
    client_urls:
      description: Advertised client URLs.
      type: list
      elements: str
      sample: [http://10.0.0.1:2379]
    is_leader:
      description: Whether this member leads.
      type: bool
      sample: true
    is_learner:
      description: Whether this member is a non-voting learner.
      type: bool
      sample: false
    healthy:
      description: Whether the member answered its health check as healthy.
      type: bool
      sample: true
    error:
      description: Why the member is not healthy, null when it is.
      type: str
      sample: null
    version:
      description: etcd version of the member, null when it did not answer.
      type: str
      sample: 3.4.23
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdError
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd_module import (
    connect,
    etcd_argument_spec,
    fail_from_error,
)


def main():
    module = AnsibleModule(argument_spec=etcd_argument_spec(), supports_check_mode=True)
    client = connect(module)
    try:
        with client:
            info = client.cluster_info()
    except EtcdError as exc:
        fail_from_error(module, exc, changed=False)
    module.exit_json(changed=False, **info)


if __name__ == '__main__':
    main()
