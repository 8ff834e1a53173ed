#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: etcd_key_info
short_description: Read etcd keys and directories, or wait for their next change
description:
  - Reads one key, or a directory (v2) / prefix (v3) with its children, through the etcd v2 or
    v3 API.
  - With O(wait=true), waits for the next change of the key, or of anything below it with
    O(recursive=true), like C(etcdctl watch), and returns that change.
  - A missing key is not an error, RV(exists) is then false.
version_added: 0.1.0
author:
  - etcdfleet maintainers (@etcdfleet)
extends_documentation_fragment:
  - etcdfleet.cluster.etcd
  - etcdfleet.cluster.attributes.info_module
  - etcdfleet.cluster.attributes
options:
  key:
    description:
      - The key or directory to read or watch.
    type: str
    required: true
  recursive:
    description:
      - Read a directory with everything below it (not only its direct children).
      - With O(wait=true), also wake for changes of keys below O(key).
    type: bool
    default: false
  wait:
    description:
      - Wait for the next change instead of reading the current value.
    type: bool
    default: false
  wait_index:
    description:
      - With O(wait=true), return the first change at or after this index (v2) or revision (v3)
        instead of the first change after the task starts. Changes already made since then are
        returned at once.
      - To follow a key without missing changes, read it and wait from its RV(revision) + 1,
        then from the returned RV(event.index) + 1.
      - When the index is older than the history the server keeps (v2 keeps 1000 events,
        v3 drops history on compaction), the task fails with a message saying so; read the key
        again and wait from its new revision.
    type: int
  wait_timeout:
    description:
      - Seconds to wait for a change with O(wait=true); the task fails when none comes.
    type: float
    default: 60
seealso:
  - module: etcdfleet.cluster.etcd_key
  - plugin: etcdfleet.cluster.etcd
    plugin_type: lookup
'''

EXAMPLES = r'''
- name: Read a key
  etcdfleet.cluster.etcd_key_info:
    key: /config/app/port
  register: port

- name: Use it
  ansible.builtin.debug:
    msg: "port is {{ port.value }}"
  when: port.exists

- name: Read a whole directory through the v3 API
  etcdfleet.cluster.etcd_key_info:
    api_version: v3
    key: /config/app
    recursive: true
  register: app

- name: Show every key and value below it
  ansible.builtin.debug:
    var: app.kv

- name: Wait up to 5 minutes for anything below /deploy to change
  etcdfleet.cluster.etcd_key_info:
    key: /deploy
    recursive: true
    wait: true
    wait_timeout: 300
  register: change

- name: Wait for the change after the one seen before, missing none
  etcdfleet.cluster.etcd_key_info:
    key: /deploy
    recursive: true
    wait: true
    wait_index: "{{ change.event.index + 1 }}"
'''

RETURN = r'''
exists:
  description: Whether the key exists (after the change, with O(wait=true)).
  returned: always
  type: bool
  sample: true
key:
  description: The key read (with O(wait=true), the key that changed).
  returned: always
  type: str
  sample: /config/app/port
value:
  description: The value, null for a directory or a missing key.
  returned: always
  type: str
  sample: "8080"
dir:
  description: Whether the key is a directory.
  returned: always
  type: bool
  sample: false
index:
  description: The key's index (v2 C(modifiedIndex), v3 C(mod_revision)); for a v3 prefix the highest below it.
  returned: when the key exists
  type: int
  sample: 42
created_index:
  description: The index at which the key was created (v2 C(createdIndex), v3 C(create_revision)).
  returned: when the key exists
  type: int
  sample: 40
ttl:
  description: Seconds left to live, null when the key does not expire.
  returned: when the key exists
  type: int
  sample: 55
revision:
  description:
    - The store index (v2 C(X-Etcd-Index)) or revision (v3) at the time of the read;
      wait from RV(revision) + 1 to see every later change.
  returned: when O(wait=false)
  type: int
  sample: 57
children:
  description:
    - The entries of a directory, each with C(key), C(value), C(dir), C(index), C(ttl) and,
      for directories, C(children) (filled with O(recursive=true)).
  returned: when the key is a directory
  type: list
  elements: dict
  sample: [{key: /config/app/port, value: "8080", dir: false, index: 42, ttl: null}]
kv:
  description:
    - Every key holding a value at or below O(key), mapped to its value (direct children only
      without O(recursive)).
  returned: when O(wait=false)
  type: dict
  sample: {/config/app/port: "8080", /config/app/mode: blue}
event:
  description: The change that ended the wait.
  returned: when O(wait=true)
  type: dict
  contains:
    action:
      description: V(create), V(update), V(delete) or V(expire) (v2 only; v3 reports expiry as V(delete)).
      type: str
      sample: update
    raw_action:
      description: The server's own name for the change (v2 action, v3 event type).
      type: str
      sample: compareAndSwap
    key:
      description: The key that changed.
      type: str
      sample: /deploy/version
    value:
      description: The new value (null for a deletion).
      type: str
      sample: "2"
    prev_value:
      description: The value before the change, when the server told it.
      type: str
      sample: "1"
    index:
      description: Index/revision of the change; wait from this + 1 for the next one.
      type: int
      sample: 58
    dir:
      description: Whether the changed key is a directory.
      type: bool
      sample: false
timed_out:
  description: Whether the wait ended because O(wait_timeout) passed.
  returned: when O(wait=true)
  type: bool
  sample: false
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdError,
    EtcdKeyNotFound,
    EtcdWatchIndexCleared,
    EtcdWatchTimeout,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd_module import (
    connect,
    etcd_argument_spec,
    fail_from_error,
)


def _child(node):
    data = dict(key=node.key, value=node.value, dir=node.dir, index=node.index, ttl=node.ttl)
    if node.dir:
        data['children'] = [_child(child) for child in node.children]
    return data


def read(client, key, recursive):
    try:
        node = client.get(key, recursive=recursive)
    except EtcdKeyNotFound as exc:
        return dict(changed=False, exists=False, key=key, value=None, dir=False, revision=exc.revision,
                    kv={})
    result = dict(changed=False, exists=True, key=node.key, value=node.value, dir=node.dir,
                  index=node.index, created_index=node.created_index, ttl=node.ttl,
                  revision=node.revision, kv=node.flatten())
    if node.dir:
        result['children'] = [_child(child) for child in node.children]
    return result


def wait(module, client, key, recursive):
    params = module.params
    try:
        event = client.watch(key, recursive=recursive, index=params['wait_index'],
                             timeout=params['wait_timeout'])
    except EtcdWatchTimeout:
        module.fail_json(msg='no change of %s%s within %s seconds' % (
            key, ' or below it' if recursive else '', params['wait_timeout']),
            changed=False, timed_out=True, key=key)
    except EtcdWatchIndexCleared as exc:
        module.fail_json(msg='%s; read %s again and wait from its revision + 1' % (exc, key),
                         changed=False, timed_out=False, key=key, oldest_index=exc.oldest,
                         current_index=exc.current)
    node = event.node
    data = event.to_dict()
    data.pop('node', None)
    data.pop('prev_node', None)
    result = dict(changed=False, timed_out=False, event=data, key=event.key,
                  exists=node is not None, value=node.value if node is not None else None,
                  dir=node.dir if node is not None else data['dir'])
    if node is not None:
        result.update(index=node.index, created_index=node.created_index, ttl=node.ttl)
    return result


def main():
    argument_spec = etcd_argument_spec(
        key=dict(type='str', required=True, no_log=False),
        recursive=dict(type='bool', default=False),
        wait=dict(type='bool', default=False),
        wait_index=dict(type='int'),
        wait_timeout=dict(type='float', default=60),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if not params['key']:
        module.fail_json(msg='key must not be empty')
    if params['wait_index'] is not None and not params['wait']:
        module.fail_json(msg='wait_index needs wait=true')
    if params['wait_index'] is not None and params['wait_index'] <= 0:
        module.fail_json(msg='wait_index must be a positive integer, got %s' % params['wait_index'])
    if not params['wait_timeout'] > 0:
        module.fail_json(msg='wait_timeout must be a positive number of seconds, got %s' % params['wait_timeout'])
    client = connect(module)
    try:
        with client:
            if params['wait']:
                result = wait(module, client, params['key'], params['recursive'])
            else:
                result = read(client, params['key'], params['recursive'])
    except EtcdError as exc:
        fail_from_error(module, exc, changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
