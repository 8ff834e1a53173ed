# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: etcd
short_description: Read values from etcd
description:
  - Returns the value of each key given, through the etcd v2 or v3 API.
  - A directory (v2) or prefix (v3) is returned as a dict of key to value of the keys below it
    (direct children only, unless O(recursive=true)).
  - A missing key, an unreachable cluster, refused credentials or a TLS problem are errors,
    unless O(default) is given; then the default is returned instead (with a warning for
    anything but a missing key).
version_added: 0.1.0
author:
  - etcdfleet maintainers (@etcdfleet)
extends_documentation_fragment:
  - etcdfleet.cluster.etcd
  - etcdfleet.cluster.etcd.lookup
options:
  _terms:
    description: The keys to read.
    type: list
    elements: str
    required: true
  recursive:
    description: For a directory, return every key below it, not only its direct children.
    type: bool
    default: false
  default:
    description:
      - Returned for a key that does not exist, or for every key when the cluster cannot be read.
      - Without it, those cases fail the task.
    type: raw
notes:
  - Every connection option may also be set on the controller through an environment variable
    (E(ETCDFLEET_ENDPOINTS), E(ETCDFLEET_API_VERSION), E(ETCDFLEET_CA_CERT), E(ETCDFLEET_CLIENT_CERT),
    E(ETCDFLEET_CLIENT_KEY), E(ETCDFLEET_USERNAME), E(ETCDFLEET_PASSWORD), E(ETCDFLEET_TIMEOUT), the names
    the node daemons read from C(/etc/etcdfleet/etcd.env)) or in C(ansible.cfg), section
    C([etcdfleet_etcd]), with the option's name as key. A keyword argument wins over the environment,
    which wins over C(ansible.cfg); without any, O(endpoints) falls back to E(ETCDCTL_ENDPOINTS).
  - The lookup runs on the controller, so python-etcd (for O(api_version=v2)), the certificate
    files and network access to the endpoints are needed there.
seealso:
  - module: etcdfleet.cluster.etcd_key_info
  - module: etcdfleet.cluster.etcd_key
'''

EXAMPLES = r'''
- name: Read one key
  ansible.builtin.debug:
    msg: "{{ lookup('etcdfleet.cluster.etcd', '/config/app/port', endpoints=['http://10.0.0.1:2379']) }}"

- name: Read with a fallback through the v3 API
  ansible.builtin.debug:
    msg: "{{ lookup('etcdfleet.cluster.etcd', '/config/app/mode', api_version='v3', default='green') }}"

- name: Read a whole directory into a dict
  ansible.builtin.set_fact:
    app_config: "{{ lookup('etcdfleet.cluster.etcd', '/config/app', recursive=true) }}"

- name: Several keys give a list
  ansible.builtin.debug:
    msg: "{{ query('etcdfleet.cluster.etcd', '/a', '/b', default='') }}"
'''

RETURN = r'''
_raw:
  description:
    - One entry per key - the value (a string), or for a directory a dict of key to value.
  type: list
  elements: raw
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    CONNECTION_OPTIONS,
    EtcdError,
    EtcdKeyNotFound,
    EtcdMissingLibrary,
    client_from_params,
)

display = Display()


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        has_default = 'default' in kwargs
        self.set_options(var_options=variables, direct=kwargs)
        default = self.get_option('default')
        recursive = self.get_option('recursive')
        params = dict((name, self.get_option(name)) for name in CONNECTION_OPTIONS)
        try:
            client = client_from_params(params)
        except EtcdMissingLibrary as exc:
            raise AnsibleLookupError('etcd lookup: %s on the controller; install it (pip install python-etcd, '
                                     'or the Debian package python3-etcd) or use api_version=v3' % exc)
        except EtcdError as exc:
            if has_default:
                display.warning('etcd lookup: %s; returning the default' % exc)
                return [default for dummy in terms]
            raise AnsibleLookupError('etcd lookup: %s' % exc)
        results = []
        with client:
            for term in terms:
                try:
                    node = client.get(term, recursive=recursive)
                except EtcdKeyNotFound:
                    if has_default:
                        results.append(default)
                        continue
                    raise AnsibleLookupError('etcd lookup: key %s not found (api %s, %s); pass default=... '
                                             'to use a fallback' % (term, client.api_version, client.endpoint))
                except EtcdError as exc:
                    if has_default:
                        display.warning('etcd lookup of %s: %s; returning the default' % (term, exc))
                        results.append(default)
                        continue
                    raise AnsibleLookupError('etcd lookup of %s: %s' % (term, exc))
                if node.dir:
                    results.append(node.flatten())
                else:
                    results.append(node.value)
        return results
