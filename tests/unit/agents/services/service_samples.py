# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container descriptions (as docker/inspect.py makes them) for the service model's tests."""

from __future__ import annotations

from etcdfleet_agents.services.containers import RegistratorOptions

NODE = '10.10.0.11'
OPTS = RegistratorOptions(hostname='core-01', advertise_ip=NODE)


def container(name='web1', image='nginx:1.25', ports=None, labels=None, env=None, **extra):
    desc = {
        'name': name,
        'image': image,
        'labels': labels or {},
        'env': env or [],
        'ports': ports if ports is not None else [
            {'port': 80, 'proto': 'tcp', 'host_ip': '0.0.0.0', 'host_port': 32768}],
        'ip': '172.17.0.5',
        'network_mode': 'bridge',
        'health': None,
        'running': True,
    }
    desc.update(extra)
    return desc


def published(port, host_port, proto='tcp', host_ip='0.0.0.0'):
    return {'port': port, 'proto': proto, 'host_ip': host_ip, 'host_port': host_port}


def unpublished(port, proto='tcp'):
    return {'port': port, 'proto': proto, 'host_ip': None, 'host_port': None}


def names(result):
    return [s.name for s in result.services]


def reasons(result):
    return [s.reason for s in result.skipped]
