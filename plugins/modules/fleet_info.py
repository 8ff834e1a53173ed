#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: fleet_info
short_description: Read fleet's machines, units and unit states
description:
  - Reads the fleet registry kept in etcd and returns, as data, what C(fleetctl list-machines),
    C(list-unit-files) and C(list-units) show, plus why a unit cannot be placed.
version_added: 0.1.0
author:
  - etcdfleet maintainers (@etcdfleet)
extends_documentation_fragment:
  - etcdfleet.cluster.etcd
  - etcdfleet.cluster.attributes.info_module
  - etcdfleet.cluster.attributes
options:
  units:
    description:
      - Only return units whose name matches one of these glob patterns (such as V(kappa-test@*)).
      - All units when empty.
    type: list
    elements: str
    default: []
  prefix:
    description:
      - The registry key prefix (fleet's C(etcd_key_prefix)).
    type: str
    default: /_coreos.com/fleet/
seealso:
  - module: etcdfleet.cluster.fleet_unit
'''

EXAMPLES = r'''
- name: Read the registry
  etcdfleet.cluster.fleet_info:
  register: fleet

- name: Show where every kappa-test instance runs
  ansible.builtin.debug:
    msg: "{{ fleet.units | selectattr('name', 'match', 'kappa-test@') | map(attribute='machine') | list }}"

- name: Show why units cannot be placed
  ansible.builtin.debug:
    msg: "{{ fleet.units | selectattr('reason') | map(attribute='reason') | list }}"
'''

RETURN = r'''
machines:
  description: The registered machines, sorted by ID.
  returned: always
  type: list
  elements: dict
  contains:
    id: {description: Machine ID., type: str, sample: 7aa2819a5e2a4c9cac1e3d4b87760f7f}
    ip: {description: Announced IP address., type: str, sample: 172.17.8.101}
    metadata: {description: Machine metadata., type: dict, sample: {region: east}}
    version: {description: Announced version., type: str, sample: 1.0.0}
units:
  description: The units in the registry (C(fleetctl list-unit-files)), sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Unit name., type: str, sample: kappa-test@1.service}
    hash: {description: SHA1 of the contents., type: str, sample: 559024d01378ac913e63c18dfd75f7a58d1f0bf8}
    desired_state: {description: C(DSTATE)., type: str, sample: launched}
    current_state: {description: C(STATE)., type: str, sample: launched}
    machine_id: {description: Target machine or null., type: str, sample: 7aa2819a5e2a4c9cac1e3d4b87760f7f}
    machine_ip: {description: IP of the target machine., type: str, sample: 172.17.8.101}
    machine: {description: C(<id>/<ip>) of the target machine., type: str, sample: 7aa2819a5e2a4c9cac1e3d4b87760f7f/172.17.8.101}
    is_global: {description: Global unit., type: bool, sample: false}
    load_state: {description: systemd LoadState on the target., type: str, sample: loaded}
    active_state: {description: systemd ActiveState on the target., type: str, sample: active}
    sub_state: {description: systemd SubState on the target., type: str, sample: running}
    reason:
      description: Why the unit cannot be placed (null when it is placed or not wanted).
      type: str
      sample: null
    reason_machines:
      description: Per machine ID, the rules that excluded it.
      type: dict
      sample: {}
    description: {description: The unit's Description., type: str, sample: kappa-test}
    machines:
      description: For global units, the machines reporting it with their systemd states.
      type: list
      elements: dict
unit_states:
  description: What each machine reports (C(fleetctl list-units)), one entry per unit and machine.
  returned: always
  type: list
  elements: dict
  sample: [{name: kappa-test@1.service, machine_id: 7aa2819a5e2a4c9cac1e3d4b87760f7f,
            load_state: loaded, active_state: active, sub_state: running, hash: 559024d01378ac913e63c18dfd75f7a58d1f0bf8}]
engine_leader:
  description: Machine ID of the machine whose engine leads (holds C(lease/engine-leader)), or null.
  returned: always
  type: str
  sample: 7aa2819a5e2a4c9cac1e3d4b87760f7f
errors:
  description: Registry entries that could not be decoded.
  returned: always
  type: list
  elements: str
  sample: []
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdError
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd_module import (
    connect,
    etcd_argument_spec,
    fail_from_error,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_keys import DEFAULT_PREFIX
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_store import FleetStore
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_names import glob_is_valid, glob_match


def main():
    argument_spec = etcd_argument_spec(
        units=dict(type='list', elements='str', default=[]),
        prefix=dict(type='str', default=DEFAULT_PREFIX),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    patterns = module.params['units'] or []
    for pattern in patterns:
        if not glob_is_valid(pattern):
            module.fail_json(msg='units: %r is not a valid glob pattern' % pattern)

    def wanted(name):
        return not patterns or any(glob_match(p, name) for p in patterns)

    client = connect(module)
    try:
        with client:
            snap = FleetStore(client, module.params['prefix']).snapshot()
    except EtcdError as exc:
        fail_from_error(module, exc, changed=False)
    machines = [dict(id=m.id, ip=m.ip, metadata=dict(m.metadata), version=m.version)
                for m in sorted(snap.machines.values(), key=lambda m: m.id)]
    units = [snap.unit_info(name) for name in sorted(snap.jobs) if wanted(name) and snap.jobs[name].exists]
    states = [dict(name=r.name, machine_id=r.machine_id, load_state=r.load_state,
                   active_state=r.active_state, sub_state=r.sub_state, hash=r.unit_hash)
              for r in snap.state_records() if wanted(r.name)]
    module.exit_json(changed=False, machines=machines, units=units, unit_states=states,
                     engine_leader=snap.engine_leader, errors=list(snap.errors))


if __name__ == '__main__':
    main()
