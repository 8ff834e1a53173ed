#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: etcd_auth
short_description: Manage etcd's users, roles and authentication
description:
  - Makes etcd hold the given roles with exactly the given permissions, the given users with exactly the
    given roles, and turns authentication on or off. Users and roles not named are left alone.
  - Works on the API of O(api_version); etcd keeps the users of its v2 and v3 APIs apart, so a cluster
    used through both needs the module run once for each.
  - Turning authentication on needs a C(root) user, which is created with O(root_password) when missing.
    On the v2 API the C(guest) role (what a request without a user may do, every key unless changed) is
    emptied before authentication goes on, unless O(roles) names it.
  - With the v2 API and TLS client certificates, etcd takes the common name of the client certificate as
    the user name, so a user may have no password in use; it still needs one to be created.
  - Once authentication is on, the connection options must name the root user (O(username) and
    O(password), or a client certificate whose common name is C(root) on the v2 API).
version_added: 0.3.0
author:
  - etcdfleet maintainers (@etcdfleet)
extends_documentation_fragment:
  - etcdfleet.cluster.etcd
  - etcdfleet.cluster.attributes
attributes:
  check_mode:
    support: full
    description: Reads the users and roles and reports the changes, without making them.
  diff_mode:
    support: full
    description: Shows the named users' roles, the named roles' permissions and the switch, before and after.
  idempotent:
    support: partial
    details: With O(update_password=always) every run sets the passwords again and reports a change.
options:
  roles:
    description:
      - Roles with exactly these permissions (missing ones are granted, others revoked).
      - A permission is a key (V(/a/b)) or, ending in C(*), every key that starts with the text before it
        (V(/a/b/*) for the keys below V(/a/b/), V(/a/b*) for V(/a/b) itself too, which the v2 API's recursive
        reads and watches of the directory need).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The role's name (letters, digits and C(_.@-)); not V(root), whose rights are fixed.
        type: str
        required: true
      read:
        description: What the role may read.
        type: list
        elements: str
        default: []
      write:
        description: What the role may write.
        type: list
        elements: str
        default: []
  users:
    description: Users with exactly these roles.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The user's name (letters, digits and C(_.@-)).
        type: str
        required: true
      password:
        description: The password, required to create the user; see O(update_password).
        type: str
      roles:
        description: The user's roles; each must exist or be in O(roles).
        type: list
        elements: str
        default: []
  root_password:
    description: The password of the C(root) user, created with it when authentication goes on and it is missing.
    type: str
  enabled:
    description: Turn authentication on (V(true)) or off (V(false)); leave it as it is when not given.
    type: bool
  update_password:
    description: Set passwords of existing users (V(always)) or only when creating them (V(on_create)).
    type: str
    choices: [on_create, always]
    default: on_create
'''

EXAMPLES = r'''
- name: Only the fleet daemons may write fleet's keys; authentication on
  etcdfleet.cluster.etcd_auth:
    endpoints: https://127.0.0.1:2379
    ca_cert: /etc/etcd/pki/ca.crt
    client_cert: /etc/etcd/pki/root.crt
    client_key: /etc/etcd/pki/root.key
    roles:
      - {name: fleet, read: [/_coreos.com/fleet, /_coreos.com/fleet/*], write: [/_coreos.com/fleet/*]}
      - {name: services-reader, read: [/services/*]}
    users:
      - {name: fleet, password: "{{ fleet_etcd_password }}", roles: [fleet]}
      - {name: discover, password: "{{ discover_etcd_password }}", roles: [services-reader]}
    root_password: "{{ etcd_root_password }}"
    enabled: true
'''

RETURN = r'''
enabled:
  description: Whether authentication is on (after the change).
  returned: success
  type: bool
  sample: true
roles:
  description: The named roles and their permissions (after the change).
  returned: success
  type: dict
  sample: {fleet: {read: [/_coreos.com/fleet/*], write: [/_coreos.com/fleet/*]}}
users:
  description: The named users and their roles (after the change); never a password.
  returned: success
  type: dict
  sample: {fleet: [fleet]}
changes:
  description: What was (or in check mode would be) changed, one line each; never a password.
  returned: success
  type: list
  elements: str
  sample: ["add_role fleet", "grant_role fleet read=/_coreos.com/fleet/* write=/_coreos.com/fleet/*"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdError,
    EtcdUsageError,
    StateAccess,
    plan_access,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd_module import (
    connect,
    etcd_argument_spec,
    fail_from_error,
)


def describe_change(change):
    """One line for a change, without its password."""
    operation = change[0]
    if operation in ('add_user', 'set_password'):
        return '%s %s' % (operation, change[1])
    if operation in ('grant_role', 'revoke_role'):
        return '%s %s read=%s write=%s' % (operation, change[1], ','.join(change[2]) or '-', ','.join(change[3]) or '-')
    if operation in ('grant_user', 'revoke_user'):
        return '%s %s %s' % (operation, change[1], ','.join(change[2]))
    return ' '.join(str(part) for part in change)


def main():
    module = AnsibleModule(
        argument_spec=etcd_argument_spec(
            roles=dict(type='list', elements='dict', default=[], options=dict(
                name=dict(type='str', required=True),
                read=dict(type='list', elements='str', default=[]),
                write=dict(type='list', elements='str', default=[]),
            )),
            users=dict(type='list', elements='dict', default=[], options=dict(
                name=dict(type='str', required=True),
                password=dict(type='str', no_log=True),
                roles=dict(type='list', elements='str', default=[]),
            )),
            root_password=dict(type='str', no_log=True),
            enabled=dict(type='bool'),
            update_password=dict(type='str', choices=['on_create', 'always'], default='on_create', no_log=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    roles, users = {}, {}
    for item in params['roles']:
        if item['name'] in roles:
            module.fail_json(msg='roles: %r is named twice' % item['name'])
        roles[item['name']] = {'read': item['read'], 'write': item['write']}
    for item in params['users']:
        if item['name'] in users:
            module.fail_json(msg='users: %r is named twice' % item['name'])
        users[item['name']] = {'password': item['password'], 'roles': item['roles']}

    client = connect(module)
    try:
        state = client.access_state()
        changes = plan_access(state, roles, users, enabled=params['enabled'], root_password=params['root_password'],
                              update_password=params['update_password'], api_version=client.api_version)
        if changes and not module.check_mode:
            client.change_access(changes)
            after = client.access_state()
        else:
            after = StateAccess(state).after(changes)
    except EtcdUsageError as exc:
        module.fail_json(msg=str(exc))
    except EtcdError as exc:
        fail_from_error(module, exc)
    finally:
        client.close()

    named_users = set(users) | (set(['root']) if any(c[:2] == ('add_user', 'root') for c in changes) else set())
    before_view = state.describe(users=named_users, roles=set(roles))
    after_view = after.describe(users=named_users, roles=set(roles) | set(
        c[1] for c in changes if c[0] == 'add_role' and c[1] != 'root'))
    result = dict(changed=bool(changes), enabled=after.enabled, roles=after_view['roles'], users=after_view['users'],
                  changes=[describe_change(change) for change in changes])
    if module._diff:
        result['diff'] = dict(before=before_view, after=after_view)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
