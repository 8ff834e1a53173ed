#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: etcd_key
short_description: Set, refresh or remove etcd keys and directories
description:
  - Writes a key (optionally with a TTL and compare-and-swap conditions), renews a TTL,
    makes a directory, or removes keys and whole directories, through the etcd v2 or v3 API.
  - With O(keys), writes or removes many keys in one run (one read and, on v3, few
    transactions), much faster than one task per key.
  - Only writes when something differs, so a second identical run reports no change.
version_added: 0.1.0
author:
  - etcdfleet maintainers (@etcdfleet)
extends_documentation_fragment:
  - etcdfleet.cluster.etcd
  - etcdfleet.cluster.attributes
attributes:
  check_mode:
    support: full
    description: Reads the current state and reports what would change without writing.
  diff_mode:
    support: full
    description: Shows the value before and after (a dict of keys for O(keys)).
  idempotent:
    support: partial
    description: Idempotent except with O(refresh=true), which renews the TTL on every run.
options:
  key:
    description:
      - The key (for example V(/config/app/port)). With O(api_version=v2) a key always starts
        with V(/); with V(v3) the key is used exactly as given.
      - Exactly one of O(key) and O(keys) is required.
    type: str
  keys:
    description:
      - Many keys at once. With O(state=present), a dict of key to value; with O(state=absent),
        a dict (values ignored) or a list of keys.
      - Values must be strings or numbers. O(ttl) applies to every key written; with
        O(api_version=v3) the keys written in one run share one lease.
      - Cannot be combined with O(value), O(dir), O(refresh) or the compare options.
    type: raw
  value:
    description:
      - The value of O(key). Required with O(state=present) unless O(dir=true) or O(refresh=true).
    type: str
  state:
    description:
      - V(present) writes the key (or directory); V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  ttl:
    description:
      - Seconds until the key expires; a positive whole number.
      - A key that already holds O(value) and already has a TTL is left alone; use O(refresh=true)
        to renew it. A key that holds O(value) without a TTL gets one.
      - Writing a new value without O(ttl) makes the key permanent, as C(etcdctl set) does.
    type: int
  refresh:
    description:
      - Renew the TTL of the existing O(key) to O(ttl) seconds without changing its value.
      - With V(v2) watchers are not woken. With V(v3) the key's lease is kept alive when it was
        granted for the same TTL; otherwise the key moves to a new lease and watchers see a
        write of the unchanged value.
      - Fails when the key does not exist. Always reports a change.
    type: bool
    default: false
  dir:
    description:
      - With O(state=present), make O(key) a directory (v2). With V(v3) directories exist only
        through the keys below them, so nothing is written and no change is reported.
      - With O(state=absent), O(key) must be a directory (or missing).
    type: bool
    default: false
  recursive:
    description:
      - With O(state=absent), remove a directory with everything below it. Without it, only an
        empty directory (v2) or a single key is removed.
    type: bool
    default: false
  prev_value:
    description:
      - Compare-and-swap or compare-and-delete, only write or remove when the current value equals this.
      - When O(key) already holds O(value), nothing is written and the condition is not checked.
    type: str
  prev_index:
    description:
      - Compare-and-swap or compare-and-delete, only write or remove when the key's current index
        (v2 C(modifiedIndex), v3 C(mod_revision)) equals this.
    type: int
  prev_exist:
    description:
      - V(false) only creates the key (fails when it exists with another value);
        V(true) only updates an existing key.
    type: bool
notes:
  - A failed compare fails the task; the message and the RV(expected) and RV(actual) results
    show both sides.
seealso:
  - module: etcdfleet.cluster.etcd_key_info
  - plugin: etcdfleet.cluster.etcd
    plugin_type: lookup
'''

EXAMPLES = r'''
- name: Set a key
  etcdfleet.cluster.etcd_key:
    endpoints: [http://10.0.0.1:2379, http://10.0.0.2:2379]
    key: /config/app/port
    value: "8080"

- name: Announce this host for 60 seconds through the v3 API
  etcdfleet.cluster.etcd_key:
    api_version: v3
    key: /hosts/{{ inventory_hostname }}
    value: "{{ ansible_default_ipv4.address }}"
    ttl: 60

- name: Renew the announcement without changing it
  etcdfleet.cluster.etcd_key:
    api_version: v3
    key: /hosts/{{ inventory_hostname }}
    ttl: 60
    refresh: true

- name: Swap the value only if it is still the old one
  etcdfleet.cluster.etcd_key:
    key: /config/app/mode
    value: blue
    prev_value: green

- name: Claim a key only if nobody else has
  etcdfleet.cluster.etcd_key:
    key: /locks/deploy
    value: "{{ inventory_hostname }}"
    prev_exist: false
    ttl: 300

- name: Write many keys in one run
  etcdfleet.cluster.etcd_key:
    keys:
      /config/app/port: "8080"
      /config/app/mode: blue
      /config/app/replicas: 3

- name: Make a directory (v2)
  etcdfleet.cluster.etcd_key:
    key: /services
    dir: true

- name: Remove a directory and everything below it
  etcdfleet.cluster.etcd_key:
    key: /config/old-app
    state: absent
    recursive: true

- name: Remove several keys
  etcdfleet.cluster.etcd_key:
    keys: [/tmp/a, /tmp/b]
    state: absent

- name: Set the connection once for many tasks
  module_defaults:
    group/etcdfleet.cluster.etcd:
      endpoints: https://10.0.0.1:2379
      ca_cert: /etc/etcd/pki/ca.pem
      client_cert: /etc/etcd/pki/client.pem
      client_key: /etc/etcd/pki/client-key.pem
  block:
    - name: Set a key over TLS
      etcdfleet.cluster.etcd_key:
        key: /config/secure
        value: "yes"
'''

RETURN = r'''
key:
  description: The key.
  returned: when O(key) is used
  type: str
  sample: /config/app/port
value:
  description: The value after the run (null when the key is absent or a directory).
  returned: when O(key) is used
  type: str
  sample: "8080"
prev_value:
  description: The value before the run (null when the key did not exist or is a directory).
  returned: when O(key) is used
  type: str
  sample: "80"
index:
  description:
    - The key's index after the run (v2 C(modifiedIndex), v3 C(mod_revision)); null when absent.
    - In check mode, the index before the run.
  returned: when O(key) is used
  type: int
  sample: 42
ttl:
  description: Seconds left to live after the run, null when the key does not expire.
  returned: when O(key) is used
  type: int
  sample: 60
dir:
  description: Whether the key is a directory.
  returned: when O(key) is used
  type: bool
  sample: false
exists:
  description: Whether the key exists after the run (would exist, in check mode).
  returned: when O(key) is used
  type: bool
  sample: true
deleted:
  description:
    - Number of keys holding values that were removed (that would be, in check mode);
      an empty directory counts as one.
  returned: when O(state=absent)
  type: int
  sample: 3
changed_keys:
  description: The keys written or removed (that would be, in check mode), sorted.
  returned: when O(keys) is used
  type: list
  elements: str
  sample: [/config/app/mode]
count:
  description: Number of keys given in O(keys).
  returned: when O(keys) is used
  type: int
  sample: 3
expected:
  description: The compare conditions that failed (C(value), C(index), C(exists)).
  returned: when a compare failed
  type: dict
  sample: {value: green}
actual:
  description: The key as found when a compare failed (C(exists), C(value), C(index)).
  returned: when a compare failed
  type: dict
  sample: {exists: true, value: red, index: 41}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdCompareFailed,
    EtcdDirNotEmpty,
    EtcdError,
    EtcdNotADir,
    EtcdNotAFile,
    EtcdUsageError,
    actual_of,
    conditions_hold,
    expected_of,
    to_text_value,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd_module import (
    check_ttl,
    connect,
    etcd_argument_spec,
    fail_from_error,
    get_or_none,
)


def _text(value):
    return '' if value is None else value + '\n'


def _node_result(key, node):
    if node is None:
        return dict(key=key, value=None, index=None, ttl=None, dir=False, exists=False)
    return dict(key=key, value=None if node.dir else node.value, index=node.index, ttl=node.ttl,
                dir=node.dir, exists=True)


def _count(node):
    """Keys holding values in ``node`` (an empty directory counts as one)."""
    return max(1, sum(1 for dummy in node.leaves()))


def _check_compare(key, node, params):
    if not conditions_hold(node, params['prev_value'], params['prev_index'], params['prev_exist']):
        raise EtcdCompareFailed(key, expected_of(params['prev_value'], params['prev_index'],
                                                 params['prev_exist']), actual_of(node))


def present_value(module, client, key):
    params = module.params
    value = params['value']
    ttl = params['ttl']
    current = get_or_none(client, key)
    prev_value = None if current is None or current.dir else current.value
    if current is not None and current.dir:
        raise EtcdNotAFile('%s is a directory, it cannot hold a value (remove it with state=absent '
                           'and recursive=true first)' % key, key=key)
    needs_write = current is None or current.value != value or (ttl is not None and current.ttl is None)
    result = _node_result(key, current)
    result.update(changed=False, prev_value=prev_value)
    if not needs_write:
        return result
    _check_compare(key, current, params)
    result.update(changed=True, value=value, ttl=ttl, exists=True, dir=False)
    if module._diff:
        result['diff'] = dict(before_header=key, after_header=key, before=_text(prev_value), after=_text(value))
    if module.check_mode:
        return result
    event = client.set(key, value, ttl=ttl, prev_value=params['prev_value'],
                       prev_index=params['prev_index'], prev_exist=params['prev_exist'])
    result.update(index=event.node.index, ttl=event.node.ttl, value=event.node.value)
    if event.prev_node is not None and not event.prev_node.dir:
        result['prev_value'] = event.prev_node.value
    return result


def present_refresh(module, client, key):
    params = module.params
    current = get_or_none(client, key)
    if current is None:
        module.fail_json(msg='cannot refresh %s: the key does not exist' % key, key=key, exists=False)
    if params['prev_exist'] is False:
        raise EtcdCompareFailed(key, {'exists': False}, actual_of(current))
    _check_compare(key, current, params)
    result = _node_result(key, current)
    result.update(changed=True, prev_value=result['value'], ttl=params['ttl'])
    if module._diff:
        result['diff'] = dict(before_header='%s (ttl)' % key, after_header='%s (ttl)' % key,
                              before='ttl: %s\n' % current.ttl, after='ttl: %s\n' % params['ttl'])
    if module.check_mode:
        return result
    node = client.refresh(key, params['ttl'], prev_value=params['prev_value'],
                          prev_index=params['prev_index'])
    result.update(index=node.index, ttl=node.ttl)
    return result


def present_dir(module, client, key):
    current = get_or_none(client, key)
    if current is not None and not current.dir:
        raise EtcdNotADir('%s holds a value, it is not a directory' % key, key=key)
    result = _node_result(key, current)
    result.update(changed=False, prev_value=None)
    if current is not None:
        return result
    if not client.supports_directories:
        if module.params['ttl'] is not None:
            raise EtcdUsageError('directories have no TTL with api_version=v3')
        result.update(dir=True, msg='api_version v3 has no directories: %s exists once keys below it are written' % key)
        return result
    result.update(changed=True, dir=True, exists=True, ttl=module.params['ttl'])
    if module._diff:
        result['diff'] = dict(before_header=key, after_header=key, before='', after='(directory)\n')
    if module.check_mode:
        return result
    event = client.mkdir(key, ttl=module.params['ttl'])
    result.update(index=event.node.index, ttl=event.node.ttl)
    return result


def absent_one(module, client, key):
    params = module.params
    current = get_or_none(client, key, recursive=params['recursive'])
    result = _node_result(key, current)
    result.update(changed=False, prev_value=None if current is None or current.dir else current.value,
                  deleted=0)
    if current is None:
        return result
    cas = params['prev_value'] is not None or params['prev_index'] is not None
    if params['dir'] and not current.dir:
        raise EtcdNotADir('%s holds a value, it is not a directory' % key, key=key)
    if current.dir:
        if cas:
            raise EtcdCompareFailed(key, expected_of(params['prev_value'], params['prev_index']),
                                    actual_of(current))
        if current.children and not params['recursive']:
            raise EtcdDirNotEmpty('%s is a directory with %d entries; set recursive=true to remove it '
                                  'with everything below it' % (key, len(current.children)), key=key)
    else:
        _check_compare(key, current, params)
    result.update(changed=True, value=None, index=None, ttl=None, exists=False)
    if module._diff:
        if current.dir:
            before = ''.join('%s=%s\n' % item for item in sorted(current.flatten().items())) or '(directory)\n'
        else:
            before = _text(current.value)
        result['diff'] = dict(before_header=key, after_header=key, before=before, after='')
    if module.check_mode:
        result['deleted'] = _count(current)
        return result
    event = client.delete(key, recursive=params['recursive'], dir=current.dir and not params['recursive'],
                          prev_value=params['prev_value'], prev_index=params['prev_index'])
    result['deleted'] = _count(event.prev_node if event.prev_node is not None else current)
    return result


def _batch_items(module):
    keys = module.params['keys']
    state = module.params['state']
    if isinstance(keys, dict):
        items = keys
    elif isinstance(keys, (list, tuple)) and state == 'absent':
        items = dict((k, None) for k in keys)
    else:
        module.fail_json(msg='keys must be a dict of key to value%s, got %s' % (
            ' or a list of keys' if state == 'absent' else '', type(keys).__name__))
    if not items:
        module.fail_json(msg='keys is empty')
    clean = {}
    for key, value in items.items():
        if not isinstance(key, str) or not key:
            module.fail_json(msg='every key in keys must be a non-empty string, got %r' % (key,))
        if state == 'present':
            try:
                clean[key] = to_text_value(value, 'the value of %s' % key)
            except EtcdUsageError as exc:
                module.fail_json(msg=str(exc))
        else:
            clean[key] = None
    return clean


def batch(module, client):
    params = module.params
    items = _batch_items(module)
    ttl = params['ttl']
    current = client.get_many(list(items))
    result = dict(changed=False, changed_keys=[], count=len(items))
    if params['state'] == 'present':
        dirs = sorted(k for k, node in current.items() if node is not None and node.dir)
        if dirs:
            raise EtcdNotAFile('%d of the keys are directories and cannot hold a value: %s'
                               % (len(dirs), ', '.join(dirs[:10])))
        to_write = {}
        for key, value in items.items():
            node = current[key]
            if node is None or node.value != value or (ttl is not None and node.ttl is None):
                to_write[key] = value
        result.update(changed=bool(to_write), changed_keys=sorted(to_write))
        if module._diff and to_write:
            result['diff'] = dict(
                before=dict((k, current[k].value) for k in sorted(to_write) if current[k] is not None),
                after=dict((k, to_write[k]) for k in sorted(to_write)))
        if to_write and not module.check_mode:
            client.set_many(to_write, ttl=ttl)
        return result
    existing = dict((k, node) for k, node in current.items() if node is not None)
    dirs = sorted(k for k, node in existing.items() if node.dir)
    if dirs and not params['recursive']:
        raise EtcdDirNotEmpty('%d of the keys are directories; set recursive=true to remove them with '
                              'everything below them: %s' % (len(dirs), ', '.join(dirs[:10])))
    result.update(changed=bool(existing), changed_keys=sorted(existing), deleted=len(existing))
    if dirs and module.check_mode:
        result['deleted'] = sum(_count(client.get(k, recursive=True)) if existing[k].dir else 1
                                for k in sorted(existing))
    if module._diff and existing:
        result['diff'] = dict(before=dict((k, None if n.dir else n.value) for k, n in sorted(existing.items())),
                              after={})
    if existing and not module.check_mode:
        events = client.delete_many(sorted(existing), recursive=params['recursive'])
        result['deleted'] = sum(_count(e.prev_node) if e.prev_node is not None else 1 for e in events)
    return result


def validate(module):
    params = module.params
    state = params['state']
    check_ttl(module)
    if params['prev_index'] is not None and params['prev_index'] <= 0:
        module.fail_json(msg='prev_index must be a positive integer, got %s' % params['prev_index'])
    if params['keys'] is not None:
        for name in ('prev_value', 'prev_index', 'prev_exist'):
            if params[name] is not None:
                module.fail_json(msg='%s cannot be used with keys' % name)
        if params['refresh'] or params['dir']:
            module.fail_json(msg='refresh and dir cannot be used with keys')
    if state == 'present':
        if params['recursive']:
            module.fail_json(msg='recursive only applies to state=absent')
        if params['key'] is not None and params['value'] is None and not params['dir'] and not params['refresh']:
            module.fail_json(msg='value is required with state=present (or set dir=true or refresh=true)')
        if params['dir'] and any(params[n] is not None for n in ('prev_value', 'prev_index', 'prev_exist')):
            module.fail_json(msg='prev_value, prev_index and prev_exist apply to values, not to directories')
    else:
        for name in ('value', 'ttl', 'prev_exist'):
            if params[name] is not None:
                module.fail_json(msg='%s cannot be used with state=absent' % name)
        if params['refresh']:
            module.fail_json(msg='refresh cannot be used with state=absent')


def main():
    argument_spec = etcd_argument_spec(
        key=dict(type='str', no_log=False),
        keys=dict(type='raw', no_log=False),
        value=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        ttl=dict(type='int'),
        refresh=dict(type='bool', default=False),
        dir=dict(type='bool', default=False),
        recursive=dict(type='bool', default=False),
        prev_value=dict(type='str'),
        prev_index=dict(type='int'),
        prev_exist=dict(type='bool'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[('key', 'keys')],
        mutually_exclusive=[('key', 'keys'), ('value', 'dir'), ('value', 'refresh'), ('dir', 'refresh'),
                            ('keys', 'value')],
        required_if=[('refresh', True, ('ttl',))],
    )
    validate(module)
    client = connect(module)
    params = module.params
    try:
        with client:
            if params['keys'] is not None:
                result = batch(module, client)
            elif params['state'] == 'absent':
                result = absent_one(module, client, params['key'])
            elif params['refresh']:
                result = present_refresh(module, client, params['key'])
            elif params['dir']:
                result = present_dir(module, client, params['key'])
            else:
                result = present_value(module, client, params['key'])
    except EtcdError as exc:
        fail_from_error(module, exc, changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
