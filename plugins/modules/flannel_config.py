#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: flannel_config
short_description: Write flannel's network configuration into etcd once
description:
  - Checks a flannel network configuration (C(Network), C(SubnetLen), C(SubnetMin), C(SubnetMax),
    C(Backend)) and writes it to C(<prefix>/config), flannel's own key, when no configuration is there.
  - A configuration found at the key is never overwritten, even when it differs from O(config).
    It stays the one in effect and the module warns that it was kept. The daemons of every host
    lease their subnets in it, so changing it is a decision for a person (remove the key by hand
    when no lease is left).
  - Fails, writing nothing, when O(config) is not a configuration the node daemons can run (not JSON,
    no C(Network), a backend other than V(vxlan) or V(host-gw), no C(Backend) at all), when its
    C(Network) overlaps a network of O(avoid), or when it holds fewer subnets than O(hosts).
  - Fails too when the configuration found is one the daemons cannot run, naming the key and why.
    One without C(Backend) is run with vxlan by the collection's daemons, with a warning (real flanneld
    runs its udp backend on it, so the two cannot share that network).
version_added: 0.2.0
author:
  - etcdfleet maintainers (@etcdfleet)
extends_documentation_fragment:
  - etcdfleet.cluster.etcd
  - etcdfleet.cluster.attributes
attributes:
  check_mode:
    support: full
    description: Reads the key and reports whether the configuration would be written, without writing.
  diff_mode:
    support: full
    description: Shows the configuration written (before is empty, as the key is only ever created).
  idempotent:
    support: full
options:
  config:
    description:
      - The network configuration, as flannel's JSON text or as a dict (written as JSON).
      - 'For example V({"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}}).'
      - C(Backend) is required here, with C(Type) V(vxlan) or V(host-gw). Real flanneld runs udp
        for a configuration without it, which the collection's daemons do not.
    type: raw
    required: true
  prefix:
    description:
      - flannel's key prefix (flanneld's C(-etcd-prefix)); the configuration is C(<prefix>/config), the
        leases are below C(<prefix>/subnets).
    type: str
    default: /coreos.com/network
  avoid:
    description:
      - Networks (V(a.b.c.d/n), or single addresses) the overlay network must not overlap, such as the
        hosts' own networks and Docker's default bridge V(172.17.0.0/16).
      - Checked against the C(Network) of O(config) and of a configuration found at the key.
    type: list
    elements: str
    default: []
  hosts:
    description:
      - How many hosts need a subnet. A configuration whose C(SubnetMin) .. C(SubnetMax) holds fewer
        subnets is refused (O(config)) or fails the task (a configuration found).
    type: int
notes:
  - The key is written with a create-only write, so two runs racing never overwrite each other's
    configuration; the loser reports the winner's as found.
seealso:
  - module: etcdfleet.cluster.etcd_key_info
  - name: flannel's configuration
    description: The fields of the network configuration and what real flanneld makes of them.
    link: https://github.com/flannel-io/flannel/blob/master/Documentation/configuration.md
'''

EXAMPLES = r'''
- name: Write the overlay network's configuration once
  etcdfleet.cluster.flannel_config:
    endpoints: https://10.0.0.1:2379
    ca_cert: /etc/etcd/pki/ca.crt
    client_cert: /etc/etcd/pki/client.crt
    client_key: /etc/etcd/pki/client.key
    config:
      Network: 10.1.0.0/16
      Backend: {Type: vxlan}
    avoid: [10.0.0.0/24, 172.17.0.0/16]
    hosts: "{{ ansible_play_hosts | length }}"
  run_once: true
  register: flannel

- name: Show the network in effect
  ansible.builtin.debug:
    msg: "{{ flannel.network }} ({{ flannel.backend }}, {{ flannel.subnets }} subnets)"

- name: The same configuration as flannel's JSON text, host-gw, on the v3 API
  etcdfleet.cluster.flannel_config:
    api_version: v3
    config: '{"Network": "10.5.0.0/16", "SubnetLen": 25, "Backend": {"Type": "host-gw"}}'
'''

RETURN = r'''
key:
  description: The key of the configuration, C(<prefix>/config).
  returned: success
  type: str
  sample: /coreos.com/network/config
config:
  description: The configuration in effect after the run (the one found, else the one written).
  returned: success
  type: str
  sample: '{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}}'
found:
  description: The configuration found at the key before the run; null when there was none.
  returned: success
  type: str
  sample: '{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}}'
network:
  description: The C(Network) of the configuration in effect.
  returned: success
  type: str
  sample: 10.1.0.0/16
subnet_len:
  description: The prefix length of every host's subnet (C(SubnetLen), or flannel's default).
  returned: success
  type: int
  sample: 24
subnet_min:
  description: The first subnet handed out (C(SubnetMin), or flannel's default).
  returned: success
  type: str
  sample: 10.1.1.0
subnet_max:
  description: The last subnet handed out (C(SubnetMax), or flannel's default).
  returned: success
  type: str
  sample: 10.1.255.0
backend:
  description:
    - The backend the collection's daemons run (V(vxlan) or V(host-gw)).
    - V(vxlan) for a configuration found without C(Backend), on which real flanneld would run udp.
  returned: success
  type: str
  sample: vxlan
subnets:
  description: How many subnets lie between C(SubnetMin) and C(SubnetMax), the most hosts the network takes.
  returned: success
  type: int
  sample: 255
'''

import dataclasses
import ipaddress
import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdCompareFailed, EtcdError
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd_module import (
    connect,
    etcd_argument_spec,
    fail_from_error,
    get_or_none,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.flannel_network import (
    FlannelConfigError,
    FlannelDataError,
    UnsupportedBackend,
    config_key,
    overlapping,
    parse_config,
)

# The backend the collection's daemons run on a configuration without Backend (as the flannel daemon reads it).
DAEMON_DEFAULT_BACKEND = 'vxlan'


class ConfigRefused(Exception):
    """A configuration (given or found) that must not be used; the message says why."""


def _short(text, limit=200):
    return text if len(text) <= limit else text[:limit - 3] + '...'


def config_text(value):
    """The JSON text of the ``config`` option (a dict or JSON text)."""
    if isinstance(value, dict):
        try:
            return json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ConfigRefused('config cannot be written as JSON: %s' % exc) from None
    if isinstance(value, bytes):
        value = value.decode('utf-8', 'replace')
    if not isinstance(value, str):
        raise ConfigRefused('config must be a dict or JSON text, got %s %r'
                            % (type(value).__name__, value))
    return value


def avoided_networks(items):
    """``[(text, IPv4Network)]`` of the ``avoid`` option; IPv6 networks cannot overlap and are left out."""
    result = []
    for item in items:
        try:
            network = ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise ConfigRefused('avoid: %r is not a network a.b.c.d/n (or an address)' % (item,)) from None
        if network.version == 4:
            result.append((item, network))
    return result


def effective_config(text):
    """The :class:`NetworkConfig` of a configuration found in etcd, read as the daemons read it.

    One without Backend runs vxlan (``backend_defaulted``), where real flanneld would run udp.
    """
    return parse_config(text, default_backend=DAEMON_DEFAULT_BACKEND)


def check_fit(config, avoid, hosts, what):
    """Refuse ``config`` when its Network overlaps a network of ``avoid`` or it holds fewer than ``hosts`` subnets."""
    hits = sorted((network.prefixlen, int(network.network_address), item)
                  for item, network in avoid if overlapping(config.network, network))
    if hits:
        names = [item for dummy, dummy, item in hits]  # the widest networks first
        shown = ', '.join(names[:3]) + (' and %d more' % (len(names) - 3) if len(names) > 3 else '')
        raise ConfigRefused('%s: the Network %s overlaps %s (given in avoid: the hosts\' own networks and '
                            'Docker\'s default bridge must stay outside the overlay); choose another Network'
                            % (what, config.network, shown))
    if hosts is not None and config.subnet_count < hosts:
        raise ConfigRefused('%s: the Network %s holds %d subnet(s) of /%d between SubnetMin %s and SubnetMax %s, '
                            'fewer than the %d hosts that need one; choose a larger Network or a longer SubnetLen'
                            % (what, config.network, config.subnet_count, config.subnet_len, config.subnet_min,
                               config.subnet_max, hosts))


def describe(config):
    return dict(network=str(config.network), subnet_len=config.subnet_len, subnet_min=str(config.subnet_min),
                subnet_max=str(config.subnet_max), backend=config.backend_type, subnets=config.subnet_count)


def same_network(first, second):
    """Whether two configurations make the same network (flannel's defaults applied, text aside)."""
    return (dataclasses.replace(first, text='', backend_defaulted=False)
            == dataclasses.replace(second, text='', backend_defaulted=False))


def given_config(module, avoid):
    params = module.params
    text = config_text(params['config'])
    try:
        config = parse_config(text)
    except UnsupportedBackend as exc:
        if exc.defaulted:
            raise ConfigRefused('config has no Backend: real flanneld runs its udp backend for such a configuration '
                                'and the collection\'s daemons do not; name the backend, for example '
                                '"Backend": {"Type": "vxlan"} (supported: vxlan, host-gw)') from None
        raise ConfigRefused('config: %s' % exc) from None
    except FlannelConfigError as exc:
        raise ConfigRefused('config: %s' % exc) from None
    check_fit(config, avoid, params['hosts'], 'config')
    return text, config


def found_config(module, key, node, given, avoid):
    """The result for a configuration found at ``key`` (never overwritten)."""
    text = node.value
    try:
        config = effective_config(text)
    except FlannelConfigError as exc:
        raise ConfigRefused('%s holds a network configuration the daemons cannot run (%s); it is not '
                            'overwritten: fix or remove it by hand' % (key, exc)) from None
    check_fit(config, avoid, module.params['hosts'], '%s (found there, never overwritten)' % key)
    if config.backend_defaulted:
        module.warn('%s has no Backend: the collection\'s daemons run %s on it, a real flanneld would run udp '
                    '(the two cannot share this network); it is kept: %s' % (key, config.backend_type, _short(text)))
    elif not same_network(config, given):
        module.warn('%s holds another network configuration, which is kept (it is never overwritten): %s; '
                    'given: %s' % (key, _short(text), _short(given.text)))
    result = dict(changed=False, key=key, config=text, found=text)
    result.update(describe(config))
    return result


def validate(module):
    """``(key, text, config, avoid)`` of the options, checked before etcd is reached."""
    params = module.params
    avoid = avoided_networks(params['avoid'])
    if params['hosts'] is not None and params['hosts'] < 0:
        raise ConfigRefused('hosts must be 0 or more, got %d' % params['hosts'])
    try:
        key = config_key(params['prefix'])
    except FlannelDataError as exc:
        raise ConfigRefused('prefix: %s' % exc) from None
    text, config = given_config(module, avoid)
    return key, text, config, avoid


def run(module, client, key, text, config, avoid):
    with client:
        node = get_or_none(client, key)
        if node is not None and node.dir:
            raise ConfigRefused('%s is a directory, not a network configuration; it is not overwritten: remove it '
                                'by hand' % key)
        if node is not None:
            return found_config(module, key, node, config, avoid)
        result = dict(changed=True, key=key, config=text, found=None)
        result.update(describe(config))
        if module._diff:
            result['diff'] = dict(before_header=key, after_header=key, before='', after=text + '\n')
        if module.check_mode:
            return result
        try:
            client.set(key, text, prev_exist=False)
        except EtcdCompareFailed:
            # another writer was quicker: its configuration is the one in effect
            node = client.get(key)
            if node.dir:
                raise ConfigRefused('%s is a directory, not a network configuration' % key)
            return found_config(module, key, node, config, avoid)
        return result


def main():
    argument_spec = etcd_argument_spec(
        config=dict(type='raw', required=True),
        prefix=dict(type='str', default='/coreos.com/network'),
        avoid=dict(type='list', elements='str', default=[]),
        hosts=dict(type='int'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        checked = validate(module)
    except ConfigRefused as exc:
        module.fail_json(msg=str(exc), changed=False)
    client = connect(module)
    try:
        result = run(module, client, *checked)
    except ConfigRefused as exc:
        module.fail_json(msg=str(exc), changed=False)
    except EtcdError as exc:
        fail_from_error(module, exc, changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
