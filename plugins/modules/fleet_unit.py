#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: fleet_unit
short_description: Submit, load, start, stop and destroy fleet units
description:
  - Manages one unit in the fleet registry kept in etcd, like C(fleetctl submit), C(load),
    C(start), C(stop), C(unload) and C(destroy).
  - A unit is a systemd unit file with an optional C([X-Fleet]) section (C(MachineID), C(MachineOf),
    C(MachineMetadata), C(Conflicts), C(Global), C(Replaces)); the fleet engine places it on a
    machine and the fleet agent of that machine runs it.
  - An instance of a template (C(name@1.service)) needs no O(content) when the template
    (C(name@.service)) is in the registry; it then gets the template's contents.
  - The contents of a unit are identified by their hash; changing the contents of an existing
    unit needs O(replace=true).
version_added: 0.1.0
author:
  - etcdfleet maintainers (@etcdfleet)
extends_documentation_fragment:
  - etcdfleet.cluster.etcd
  - etcdfleet.cluster.attributes
attributes:
  check_mode:
    support: full
    description: Reports what would change without writing to etcd.
  diff_mode:
    support: full
    description: Shows the unit contents and desired state before and after.
  idempotent:
    support: full
    description: A second run with the same options changes nothing.
options:
  name:
    description:
      - The unit name, such as V(web.service), V(kappa-test@.service) (a template) or
        V(kappa-test@1.service) (an instance).
    type: str
    required: true
  content:
    description:
      - The unit file text.
      - Needed to create a unit, unless it is an instance of a template already in the registry.
    type: str
  src:
    description:
      - Path of the unit file on the host running the module (use O(content) with a C(file)
        lookup for a file on the controller).
    type: path
  state:
    description:
      - V(inactive) submits the unit (C(fleetctl submit), or C(unload) for a unit already placed).
      - V(loaded) has it placed on a machine and loaded into its systemd, not started
        (C(fleetctl load), or C(stop) for a running unit).
      - V(launched) has it placed and started (C(fleetctl start)).
      - V(absent) removes it from the registry (C(fleetctl destroy)); its machine stops it.
      - A template can only be V(inactive) or V(absent).
    type: str
    choices: [inactive, loaded, launched, absent]
    default: launched
  replace:
    description:
      - Give an existing unit new contents when they differ. Its desired state stays; the
        machine running it restarts it with the new contents, and the engine moves it when its
        rules no longer hold there.
      - Without it, different contents for an existing unit are refused and nothing is written.
    type: bool
    default: false
  wait:
    description:
      - Wait until the unit reaches O(state) (for V(launched), until systemd reports it
        C(active) on its machine).
      - The task fails, with the engine's reason, when the unit cannot be placed, and when its
        systemd state is C(failed).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait with O(wait=true).
    type: float
    default: 60
  prefix:
    description:
      - The registry key prefix (fleet's C(etcd_key_prefix)).
    type: str
    default: /_coreos.com/fleet/
notes:
  - The registry layout is fleet's, so the units can be listed and driven by C(fleetctl) too.
seealso:
  - module: etcdfleet.cluster.fleet_info
'''

EXAMPLES = r'''
- name: Submit a template
  etcdfleet.cluster.fleet_unit:
    name: kappa-test@.service
    state: inactive
    content: |
      [Unit]
      Description=kappa-test
      After=docker.service
      Requires=docker.service

      [Service]
      ExecStartPre=-/usr/bin/docker rm -f kappa-test-%i
      ExecStart=/usr/bin/docker run --rm --name kappa-test-%i -p 8000 etcdfleet/busybox:latest httpd -f -p 8000
      ExecStop=/usr/bin/docker stop kappa-test-%i

      [X-Fleet]
      Conflicts=kappa-test@*.service

- name: Start three instances, each on its own machine
  etcdfleet.cluster.fleet_unit:
    name: "kappa-test@{{ item }}.service"
    state: launched
    wait: true
  loop: [1, 2, 3]

- name: Replace the contents of a running unit
  etcdfleet.cluster.fleet_unit:
    name: web.service
    src: /srv/units/web.service
    replace: true

- name: Remove a unit
  etcdfleet.cluster.fleet_unit:
    name: web.service
    state: absent
'''

RETURN = r'''
name:
  description: The unit name.
  returned: always
  type: str
  sample: kappa-test@1.service
hash:
  description: SHA1 of the unit's normalized contents (null when absent).
  returned: always
  type: str
  sample: 559024d01378ac913e63c18dfd75f7a58d1f0bf8
desired_state:
  description: The desired state (C(DSTATE)); null when absent.
  returned: always
  type: str
  sample: launched
current_state:
  description: The current state (C(STATE)) derived from what the machines report; null when absent.
  returned: always
  type: str
  sample: launched
machine_id:
  description: The machine the unit is placed on, null when not placed.
  returned: always
  type: str
  sample: 7aa2819a5e2a4c9cac1e3d4b87760f7f
machine_ip:
  description: The IP address of that machine.
  returned: always
  type: str
  sample: 172.17.8.101
active_state:
  description: systemd's ActiveState on that machine, when reported.
  returned: always
  type: str
  sample: active
sub_state:
  description: systemd's SubState on that machine, when reported.
  returned: always
  type: str
  sample: running
is_global:
  description: Whether the unit is global (runs on every matching machine).
  returned: always
  type: bool
  sample: false
reason:
  description: Why the engine cannot place the unit, naming the rule that excluded each machine.
  returned: always
  type: str
  sample: "kappa-test@4.service cannot be placed: 1e2b4a5c: Conflicts kappa-test@*.service with kappa-test@1.service on 1e2b4a5c"
reason_machines:
  description: Per machine ID, the rules that excluded it.
  returned: always
  type: dict
  sample: {1e2b4a5c0d9e4f7a8b6c5d4e3f2a1b0c: ["Conflicts kappa-test@*.service with kappa-test@1.service on 1e2b4a5c"]}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdError
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd_module import (
    connect,
    etcd_argument_spec,
    fail_from_error,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_keys import DEFAULT_PREFIX
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import RegistryFormatError
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_store import (
    FleetStore,
    UnitExists,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_names import (
    parse_unit_name,
    validate_unit_name,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_rules import validate_unit
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import UnitError, parse_unit, short_hash

EMPTY = dict(hash=None, desired_state=None, current_state=None, machine_id=None, machine_ip=None,
             active_state=None, sub_state=None, is_global=False, reason=None, reason_machines={})


def describe(snap, name):
    info = snap.unit_info(name)
    result = dict(EMPTY, name=name)
    if info is not None:
        for key in EMPTY:
            result[key] = info.get(key)
        result['reason_machines'] = info.get('reason_machines') or {}
    return result


def failed_record(snap, name):
    """The state record of ``name`` on its target machine when systemd reports it failed, else None."""
    job = snap.jobs.get(name)
    record = snap.states.get(name, {}).get(job.target) if job is not None and job.target else None
    return record if record is not None and record.active_state == 'failed' else None


def wait_done(state, stale=None):
    """Predicate for FleetStore.wait_for: done, or hopeless (then the caller reports why).

    ``stale`` is a failed state record seen before this run started the unit: until the machine
    reports something else, that failure is the previous run's, not this one's.
    """
    def predicate(snap, name):
        job = snap.jobs.get(name)
        if job is None:
            return True
        if job.is_global:
            records = snap.states.get(name, {}).values()
            if state == 'launched':
                return any(r.active_state == 'active' for r in records)
            return True
        if state in ('loaded', 'launched') and not job.target and job.reason:
            return True
        current = snap.current_state(name)
        if state == 'launched':
            record = snap.states.get(name, {}).get(job.target) if job.target else None
            if record is not None and record.active_state == 'failed' and record != stale:
                return True
            return current == 'launched' and record is not None and record.active_state == 'active'
        return current == state
    return predicate


def read_src(module, path):
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8')
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg='cannot read src %s: %s' % (path, exc))


def main():
    argument_spec = etcd_argument_spec(
        name=dict(type='str', required=True),
        content=dict(type='str'),
        src=dict(type='path'),
        state=dict(type='str', default='launched', choices=['inactive', 'loaded', 'launched', 'absent']),
        replace=dict(type='bool', default=False),
        wait=dict(type='bool', default=False),
        wait_timeout=dict(type='float', default=60),
        prefix=dict(type='str', default=DEFAULT_PREFIX),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('content', 'src')])
    params = module.params
    name = params['name']
    state = params['state']
    try:
        validate_unit_name(name)
    except UnitError as exc:
        module.fail_json(msg='invalid unit name %r: %s' % (name, exc))
    if not params['wait_timeout'] > 0:
        module.fail_json(msg='wait_timeout must be a positive number of seconds, got %s' % params['wait_timeout'])
    info = parse_unit_name(name)
    if info.is_template and state in ('loaded', 'launched'):
        module.fail_json(msg='%s is a template: it can only be inactive or absent; start an instance '
                             'such as %s@1%s' % (name, info.prefix, info.suffix))
    text = params['content']
    if params['src'] is not None:
        text = read_src(module, params['src'])
    unit = None
    if text is not None:
        try:
            unit, dummy = validate_unit(parse_unit(text), name)
        except UnitError as exc:
            module.fail_json(msg='unit %s: %s' % (name, exc))

    client = connect(module)
    try:
        with client:
            store = FleetStore(client, params['prefix'])
            result = run(module, store, name, state, unit)
    except EtcdError as exc:
        fail_from_error(module, exc, changed=False)
    except RegistryFormatError as exc:
        module.fail_json(msg='registry data for %s is invalid: %s' % (name, exc), changed=False)
    module.exit_json(**result)


def run(module, store, name, state, unit):
    params = module.params
    check = module.check_mode
    job = store.job(name)
    before = dict(state='absent', content='')
    if job is not None:
        before = dict(state=job.target_state or 'inactive',
                      content=job.unit.text if job.unit is not None else '')
    changed = False
    after = dict(before)
    # a unit stopped earlier may still show that stop's failure (a container's exit status)
    stale = (failed_record(store.snapshot(), name)
             if params['wait'] and state == 'launched' and job is not None and job.target_state != state else None)

    if state == 'absent':
        if job is not None:
            changed = True
            after = dict(state='absent', content='')
            if not check:
                store.destroy_unit(name)
    elif job is None:
        if unit is None:
            info = parse_unit_name(name)
            template = store.job(info.template) if info.is_instance else None
            if template is None or template.unit is None:
                module.fail_json(msg='unit %s is not in the registry: give content or src to create it%s'
                                 % (name, ' (or submit its template %s first)' % info.template
                                    if info.is_instance else ''), changed=False)
            unit = template.unit
            try:
                validate_unit(unit, name)
            except UnitError as exc:
                module.fail_json(msg='unit %s (from template %s): %s' % (name, info.template, exc))
        changed = True
        after = dict(state=state, content=unit.text)
        if not check:
            try:
                store.create_unit(name, unit, target_state=state)
            except UnitExists:
                module.fail_json(msg='unit %s was created by someone else meanwhile; run again' % name)
    else:
        if unit is not None and unit.hash != job.unit_hash:
            if not params['replace']:
                module.fail_json(
                    msg='unit %s is already in the registry with other contents (stored hash %s, '
                        'given %s); set replace=true to change it' % (name, short_hash(job.unit_hash), short_hash(unit.hash)),
                    changed=False, hash=job.unit_hash, new_hash=unit.hash)
            changed = True
            after['content'] = unit.text
            if not check:
                store.replace_unit(name, unit)
        if job.target_state != state:
            changed = True
            after['state'] = state
            if not check:
                store.set_target_state(name, state)

    snap = store.snapshot()
    if params['wait'] and state != 'absent' and not check:
        snap, pending = store.wait_for([name], wait_done(state, stale), params['wait_timeout'])
        result = describe(snap, name)
        job = snap.jobs.get(name)
        if job is not None and not job.target and job.reason and not job.is_global:
            module.fail_json(msg=job.reason, changed=changed, **result)
        if result['active_state'] == 'failed' and state == 'launched':
            module.fail_json(msg='unit %s failed on %s (systemd: %s/%s)' % (
                name, result['machine_id'], result['active_state'], result['sub_state']),
                changed=changed, **result)
        if pending:
            module.fail_json(msg='unit %s did not become %s within %s seconds: current state %s%s' % (
                name, state, params['wait_timeout'], result['current_state'],
                ', systemd %s/%s' % (result['active_state'], result['sub_state'])
                if result['active_state'] else ''), changed=changed, **result)
    elif params['wait'] and state == 'absent' and not check:
        snap, pending = store.wait_for([name], lambda s, n: n not in s.states, params['wait_timeout'])
    result = describe(snap, name)
    if check and state != 'absent':
        result['desired_state'] = state
        if unit is not None:
            result['hash'] = unit.hash
    result['changed'] = changed
    if module._diff:
        result['diff'] = dict(before='state: %s\n%s' % (before['state'], before['content']),
                              after='state: %s\n%s' % (after['state'], after['content']),
                              before_header='%s (registry)' % name, after_header=name)
    return result


if __name__ == '__main__':
    main()
