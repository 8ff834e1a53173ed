#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: fleet_machine
short_description: Drain a fleet machine or take it back (uncordon)
description:
  - Marks a machine drained or takes the mark off. A drained machine takes no placed unit, and
    the engine moves the units it placed there to other machines, honouring their
    C(Conflicts), C(MachineOf) and C(MachineMetadata) rules. Global units stay.
  - A unit moves by a stop then a start. The engine places it again only once the drained
    machine reports it stopped, so it never runs twice. A service with several instances keeps
    serving through its other instances while one moves.
  - The mark is the run-time metadata C(drained=true) (C(machines/<id>/metadata/drained), kept
    without TTL, so a drained machine stays drained across restarts). The machine's agent
    publishes it in its object, where C(fleetctl list-machines) of fleet 1.0 shows it.
version_added: 0.4.0
author:
  - etcdfleet maintainers (@etcdfleet)
extends_documentation_fragment:
  - etcdfleet.cluster.etcd
  - etcdfleet.cluster.attributes
attributes:
  check_mode:
    support: full
    description: Reads the mark and reports whether it would change, without writing or waiting.
  diff_mode:
    support: full
    description: Shows the mark before and after.
  idempotent:
    support: full
options:
  machine:
    description:
      - The machine, by its full ID (C(/etc/machine-id)), its 8-character short ID, or the IP
        address it is registered with (C(fleetctl list-machines)).
      - To take the mark off a machine that is not registered, give its full ID.
    type: str
    required: true
  drained:
    description:
      - V(true) drains the machine; V(false) takes it back (its units do not move back, new ones
        may be placed there).
    type: bool
    required: true
  wait:
    description:
      - With O(drained=true), wait until no placed unit is on the machine any more and each unit
        that left it is running elsewhere or has a reason why it cannot be placed.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait, at most, with O(wait=true).
    type: int
    default: 120
  prefix:
    description: The fleet registry's key prefix.
    type: str
    default: /_coreos.com/fleet/
seealso:
  - module: etcdfleet.cluster.fleet_info
'''

EXAMPLES = r'''
- name: Drain a machine before taking it down
  etcdfleet.cluster.fleet_machine:
    machine: "{{ ansible_facts.default_ipv4.address }}"
    drained: true
  register: drained

- name: Show how long each moved unit was down
  ansible.builtin.debug:
    msg: "{{ drained.moved | map(attribute='gap') | list }}"

- name: Take it back
  etcdfleet.cluster.fleet_machine:
    machine: "{{ ansible_facts.default_ipv4.address }}"
    drained: false
'''

RETURN = r'''
machine:
  description: The machine's full ID.
  returned: always
  type: str
  sample: 7aa2819a5e2a4c9cac1e3d4b87760f7f
moved:
  description:
    - The units that left the machine while the module waited, with the machine each runs on
      now and the gap in seconds between its stop there and its start there (as the registry
      shows them, followed with a watch).
  returned: when the machine was drained and O(wait=true)
  type: list
  elements: dict
  sample: [{name: kappa-test@2.service, machine_id: bc1eb30f9eb844648110fec1455db88e, gap: 2.4}]
unplaced:
  description: Units that left the machine and cannot be placed elsewhere, with the engine's reason.
  returned: when the machine was drained and O(wait=true)
  type: list
  elements: dict
  sample: [{name: kappa-test@3.service, reason: "Unable to schedule kappa-test@3.service: ..."}]
'''

import ipaddress
import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdError
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd_module import (
    connect,
    etcd_argument_spec,
    fail_from_error,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_keys import DEFAULT_PREFIX
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import DRAINED_METADATA, RUNNING_STATES
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_store import FleetStore

_ID = re.compile(r'^[0-9a-f]{8}([0-9a-f]{24})?$')
_POLL = 0.2


def _is_ip(value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def find_machine(module, snap, wanted):
    """The full ID of ``wanted`` (ID, short ID or IP), or a failure naming it."""
    if not (_ID.match(wanted) or _is_ip(wanted)):
        module.fail_json(msg='machine: %r is neither a machine ID nor an IP address' % wanted)
    found = [m.id for m in snap.machines.values() if m.matches_id(wanted) or m.ip == wanted]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        module.fail_json(msg='machine: %r names %d machines (%s); give the full ID'
                         % (wanted, len(found), ', '.join(sorted(found))))
    if len(wanted) == 32 and _ID.match(wanted):
        return wanted
    module.fail_json(msg='machine: %r is not registered (fleetctl list-machines); give the full ID '
                     'of a machine that is gone' % wanted)


def placed_on(snap, machine_id):
    """Non-global units placed on the machine, or still running there."""
    names = set(name for name, job in snap.jobs.items() if job.target == machine_id and not job.is_global)
    for name, records in snap.states.items():
        job = snap.jobs.get(name)
        record = records.get(machine_id)
        if job is not None and not job.is_global and record is not None and record.active_state in RUNNING_STATES:
            names.add(name)
    return names


def wait_drained(module, store, machine_id, timeout):
    """Follow the registry until nothing placed is left on the machine and every unit that left
    is running elsewhere or has a reason; ``(moved, unplaced)``."""
    deadline = time.monotonic() + timeout
    snap = store.snapshot()
    leaving = sorted(placed_on(snap, machine_id))
    stopped_at, started_at, where = {}, {}, {}
    while True:
        now = time.monotonic()
        left_here = placed_on(snap, machine_id)
        unplaced = {}
        for name in leaving:
            job = snap.jobs.get(name)
            if name not in left_here:
                stopped_at.setdefault(name, now)
            if job is None or not job.exists:
                continue
            record = snap.states.get(name, {}).get(job.target) if job.target else None
            if job.target and job.target != machine_id and record is not None and record.active_state == 'active':
                started_at.setdefault(name, now)
                where[name] = job.target
            elif job.target is None and job.reason and name not in left_here:
                unplaced[name] = job.reason
        settled = not left_here and all(
            name in started_at or name in unplaced or snap.jobs.get(name) is None
            or snap.jobs[name].target_state != 'launched' for name in leaving)
        if settled:
            break
        if now > deadline:
            module.fail_json(msg='machine %s: still placed or running there after %ds: %s; not yet running '
                             'elsewhere: %s' % (machine_id, timeout, ', '.join(sorted(left_here)) or 'none',
                                                ', '.join(n for n in leaving if n not in started_at
                                                          and n not in unplaced) or 'none'),
                             changed=True, machine=machine_id)
        store.wait_change(snap, _POLL)
        snap = store.snapshot()
    moved = [dict(name=name, machine_id=where[name],
                  gap=round(max(0.0, started_at[name] - stopped_at.get(name, started_at[name])), 1))
             for name in leaving if name in started_at]
    return moved, [dict(name=name, reason=reason) for name, reason in sorted(unplaced.items())]


def main():
    argument_spec = etcd_argument_spec(
        machine=dict(type='str', required=True),
        drained=dict(type='bool', required=True),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=120),
        prefix=dict(type='str', default=DEFAULT_PREFIX),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    drained = module.params['drained']
    if module.params['wait_timeout'] < 1:
        module.fail_json(msg='wait_timeout: %r must be at least 1' % module.params['wait_timeout'])
    client = connect(module)
    result = dict(changed=False)
    try:
        with client:
            store = FleetStore(client, module.params['prefix'])
            snap = store.snapshot()
            machine_id = find_machine(module, snap, module.params['machine'].strip().lower())
            result['machine'] = machine_id
            before = snap.machine_metadata.get(machine_id, {}).get(DRAINED_METADATA) == 'true'
            result['changed'] = before != drained
            if module._diff:
                result['diff'] = dict(before='drained: %s\n' % str(before).lower(),
                                      after='drained: %s\n' % str(drained).lower())
            if module.check_mode:
                module.exit_json(**result)
            if result['changed']:
                store.set_machine_metadata(machine_id, DRAINED_METADATA, 'true' if drained else None)
            if drained and module.params['wait']:
                result['moved'], result['unplaced'] = wait_drained(module, store, machine_id,
                                                                   module.params['wait_timeout'])
    except EtcdError as exc:
        fail_from_error(module, exc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
