#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: etcd_discovery_token
short_description: Mint an etcd discovery token on a self-hosted discovery etcd
description:
  - Creates a discovery token for a new etcd cluster of O(size) members on an etcd that serves
    the v2 keys API, the way the public discovery service does - it writes
    C(<prefix>/<token>/_config/size) and returns the discovery URL to pass to each new member
    (C(--discovery) / C(ETCD_DISCOVERY)).
  - New members read the size from the URL and register themselves below it; the cluster starts
    once O(size) members have registered.
  - Without O(token), a new random token is made on every run (always a change); give O(token)
    to make the task idempotent.
version_added: 0.1.0
author:
  - etcdfleet maintainers (@etcdfleet)
extends_documentation_fragment:
  - etcdfleet.cluster.etcd
  - etcdfleet.cluster.attributes
attributes:
  check_mode:
    support: full
    description: Reports the token and URL that would be created without writing.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  idempotent:
    support: partial
    description: Idempotent when O(token) is given.
options:
  size:
    description:
      - Number of members of the new cluster. Required with O(state=present).
      - The size of an existing token can change only while no member has registered.
    type: int
  token:
    description:
      - The token; letters, digits, V(-) and V(_). A random 32 character token when not set.
      - Required with O(state=absent).
    type: str
  prefix:
    description:
      - The directory below which tokens live on the discovery etcd.
    type: str
    default: /_etcd/registry
  url:
    description:
      - Base URL the new members use to reach the discovery etcd, such as
        V(http://10.0.0.5:2379), when it differs from the endpoint this module uses.
      - Defaults to the endpoint that answered.
    type: str
  state:
    description:
      - V(present) creates the token (or checks it); V(absent) removes it with every registration below it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - The discovery protocol uses the v2 keys API, so O(api_version) must be V(v2) and the
    discovery etcd must run with C(--enable-v2=true).
seealso:
  - module: etcdfleet.cluster.etcd_key
'''

EXAMPLES = r'''
- name: Mint a token for a 3 member cluster on the discovery etcd
  etcdfleet.cluster.etcd_discovery_token:
    endpoints: http://10.0.0.5:2379
    size: 3
    token: "{{ cluster_name | hash('sha1') }}"
  register: discovery
  run_once: true

- name: Hand the URL to the members
  ansible.builtin.set_fact:
    etcd_discovery_url: "{{ discovery.discovery_url }}"

- name: Remove the token once the cluster runs
  etcdfleet.cluster.etcd_discovery_token:
    endpoints: http://10.0.0.5:2379
    token: "{{ cluster_name | hash('sha1') }}"
    state: absent
'''

RETURN = r'''
discovery_url:
  description: The URL to give every new member as its discovery URL.
  returned: always
  type: str
  sample: http://10.0.0.5:2379/v2/keys/_etcd/registry/6c007a14875d53d9bf0ef5a6fc0257c8
token:
  description: The token.
  returned: always
  type: str
  sample: 6c007a14875d53d9bf0ef5a6fc0257c8
size:
  description: The cluster size stored for the token (null when absent).
  returned: always
  type: int
  sample: 3
members:
  description: The registrations below the token (C(name=peer-url) values), sorted.
  returned: always
  type: list
  elements: str
  sample: [etcd1=http://10.0.0.1:2380]
'''

import re
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdError
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd_module import (
    connect,
    etcd_argument_spec,
    fail_from_error,
    get_or_none,
)

_TOKEN_RE = re.compile(r'^[A-Za-z0-9_-]+$')


def _registrations(node):
    """Registered members (``name=peer-url`` values) of a token directory node.

    The v2 API hides keys whose name starts with ``_`` (such as ``_config``)
    from directory listings, so only registrations are listed.
    """
    return sorted(child.value for child in node.children if not child.dir)


def main():
    argument_spec = etcd_argument_spec(
        size=dict(type='int'),
        token=dict(type='str', no_log=False),
        prefix=dict(type='str', default='/_etcd/registry'),
        url=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'present', ('size',)), ('state', 'absent', ('token',))])
    params = module.params
    if params['api_version'] != 'v2':
        module.fail_json(msg='the discovery protocol uses the etcd v2 keys API: api_version must be v2, got %s'
                         % params['api_version'])
    if params['state'] == 'present' and params['size'] <= 0:
        module.fail_json(msg='size must be a positive number of members, got %s' % params['size'])
    token = params['token']
    if token is not None and not _TOKEN_RE.match(token):
        module.fail_json(msg='token may only hold letters, digits, "-" and "_", got %r' % token)
    prefix = '/' + params['prefix'].strip('/')
    if prefix == '/':
        module.fail_json(msg='prefix must name a directory below the root, got %r' % params['prefix'])
    generated = token is None
    if generated:
        token = uuid.uuid4().hex
    token_key = '%s/%s' % (prefix, token)
    size_key = token_key + '/_config/size'

    client = connect(module)
    try:
        with client:
            current = None if generated else get_or_none(client, token_key)
            base = (params['url'] or client.endpoint).rstrip('/')
            result = dict(changed=False, token=token, discovery_url='%s/v2/keys%s' % (base, token_key),
                          size=None, members=[])
            if current is not None:
                if not current.dir:
                    module.fail_json(msg='%s holds a value, it is not a discovery token directory' % token_key,
                                     **result)
                size_node = get_or_none(client, size_key)
                size = size_node.value if size_node is not None and not size_node.dir else None
                result.update(size=int(size) if size and size.isdigit() else size,
                              members=_registrations(current))
            if params['state'] == 'absent':
                if current is not None:
                    result['changed'] = True
                    if not module.check_mode:
                        client.delete(token_key, recursive=True)
                module.exit_json(**result)
            wanted = params['size']
            if current is not None and result['size'] == wanted:
                module.exit_json(**result)
            if current is not None and result['members']:
                module.fail_json(msg='token %s already has %d registered member(s) for size %s; '
                                 'its size cannot change to %d' % (token, len(result['members']),
                                                                   result['size'], wanted), **result)
            result.update(changed=True, size=wanted)
            if not module.check_mode:
                client.set(size_key, str(wanted), prev_exist=False if generated else None)
    except EtcdError as exc:
        fail_from_error(module, exc, changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
