# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    # Connection options shared by every etcd module and the etcd lookup.
    DOCUMENTATION = r'''
options:
  endpoints:
    description:
      - Client URLs of etcd members, such as V(http://10.0.0.1:2379) or V(https://etcd1.example.com:2379).
      - They are tried in order; a request moves on to the next URL when one cannot be reached.
        When none answers, the error names every URL tried and why it failed.
      - An entry may hold several URLs separated by commas.
      - A URL without scheme gets V(https) when O(ca_cert) or O(client_cert) is set, else V(http);
        a URL without port gets V(2379).
      - When not set, the E(ETCDCTL_ENDPOINTS) environment variable (comma separated) of the host
        running the plugin is used (the target for modules, the controller for the lookup),
        then V(http://127.0.0.1:2379).
    type: list
    elements: str
  api_version:
    description:
      - The etcd API to use.
      - V(v2) uses the C(/v2/keys) API through the python-etcd library; the etcd server must
        run with C(--enable-v2=true) (etcd 3.4 and 3.5; etcd 3.6 has no v2 API).
      - V(v3) uses etcd's v3 JSON gateway (C(/v3/...)) and needs no extra library.
      - The v2 and v3 key spaces are separate, keys written with one are not seen by the other.
      - With V(v3) a directory is the set of keys that start with its name followed by C(/),
        and a TTL is a lease granted for the write.
    type: str
    choices: [v2, v3]
    default: v2
  ca_cert:
    description:
      - PEM file of the certificate authority that signed the etcd server certificates.
      - Without it, the system trust store is used for V(https) endpoints.
    type: path
  client_cert:
    description:
      - PEM file of the client certificate, for clusters started with C(--client-cert-auth).
      - May also hold the private key, in which case O(client_key) can be omitted.
    type: path
  client_key:
    description:
      - PEM file of the private key of O(client_cert).
    type: path
  username:
    description:
      - User name for etcd authentication (v2 basic authentication, v3 token authentication).
      - Requires O(password).
    type: str
  password:
    description:
      - Password of O(username).
    type: str
  timeout:
    description:
      - Seconds to wait for a connection and for each answer (not for watches, see the
        module's own wait options).
    type: float
    default: 5
requirements:
  - python-etcd >= 0.4.3 when O(api_version=v2) (Debian package C(python3-etcd)).
'''

    # The etcd lookup's connection options may also come from the controller's environment and from
    # ansible.cfg (section [etcdfleet_etcd]); keyword arguments win over the environment, which wins
    # over ansible.cfg, as Ansible orders plugin options.
    LOOKUP = r'''
options:
  endpoints:
    env:
      - name: ETCDFLEET_ENDPOINTS
    ini:
      - section: etcdfleet_etcd
        key: endpoints
  api_version:
    env:
      - name: ETCDFLEET_API_VERSION
    ini:
      - section: etcdfleet_etcd
        key: api_version
  ca_cert:
    env:
      - name: ETCDFLEET_CA_CERT
    ini:
      - section: etcdfleet_etcd
        key: ca_cert
  client_cert:
    env:
      - name: ETCDFLEET_CLIENT_CERT
    ini:
      - section: etcdfleet_etcd
        key: client_cert
  client_key:
    env:
      - name: ETCDFLEET_CLIENT_KEY
    ini:
      - section: etcdfleet_etcd
        key: client_key
  username:
    env:
      - name: ETCDFLEET_USERNAME
    ini:
      - section: etcdfleet_etcd
        key: username
  password:
    env:
      - name: ETCDFLEET_PASSWORD
    ini:
      - section: etcdfleet_etcd
        key: password
  timeout:
    env:
      - name: ETCDFLEET_TIMEOUT
    ini:
      - section: etcdfleet_etcd
        key: timeout
'''
