# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker's inspect documents read into the plain container descriptions of the service model."""

from __future__ import annotations


def _first_binding(bindings):
    """Pick the binding to register: the first IPv4 (or wildcard) one, else the first."""
    usable = [b for b in bindings or () if isinstance(b, dict) and str(b.get('HostPort') or '').isdigit()]
    if not usable:
        return None
    for binding in usable:
        host_ip = binding.get('HostIp') or ''
        if ':' not in host_ip:
            return binding
    return usable[0]


def container_from_inspect(attrs):
    """Turn a Docker inspect document (``docker inspect`` / SDK ``.attrs``)
    into the plain description container_services reads."""
    if not isinstance(attrs, dict):
        raise ValueError('inspect data must be a mapping, got %r' % (type(attrs).__name__,))
    config = attrs.get('Config') or {}
    host_config = attrs.get('HostConfig') or {}
    settings = attrs.get('NetworkSettings') or {}
    state = attrs.get('State') or {}
    network_mode = host_config.get('NetworkMode') or 'default'

    ports = {}
    for spec, bindings in sorted((settings.get('Ports') or {}).items()):
        number, _sep, proto = spec.partition('/')
        if not number.isdigit():
            continue
        chosen = _first_binding(bindings)
        ports[(int(number), proto or 'tcp')] = {
            'port': int(number), 'proto': proto or 'tcp',
            'host_ip': (chosen.get('HostIp') or None) if chosen else None,
            'host_port': int(chosen['HostPort']) if chosen else None,
        }
    for spec in sorted(config.get('ExposedPorts') or {}):
        number, _sep, proto = spec.partition('/')
        if number.isdigit() and (int(number), proto or 'tcp') not in ports:
            ports[(int(number), proto or 'tcp')] = {
                'port': int(number), 'proto': proto or 'tcp', 'host_ip': None, 'host_port': None}

    ip = settings.get('IPAddress') or None
    networks = settings.get('Networks') or {}
    if not ip and networks:
        ordered = sorted(networks)
        if network_mode in networks:
            ordered.remove(network_mode)
            ordered.insert(0, network_mode)
        for net in ordered:
            candidate = (networks.get(net) or {}).get('IPAddress')
            if candidate:
                ip = candidate
                break

    health = (state.get('Health') or {}).get('Status') or None
    return {
        'id': attrs.get('Id'),
        'name': (attrs.get('Name') or '').lstrip('/'),
        'image': config.get('Image') or attrs.get('Image'),
        'labels': dict(config.get('Labels') or {}),
        'env': list(config.get('Env') or []),
        'ports': [ports[k] for k in sorted(ports)],
        'ip': ip,
        'network_mode': network_mode,
        'health': health,
        # a paused container cannot answer: it counts as not running
        'running': bool(state.get('Running', True)) and not state.get('Paused'),
    }
