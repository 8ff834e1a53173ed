# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Command-line settings the service daemons share (registrator, announcer): argument types
that reject a bad value in one line, and the address this node advertises."""

import argparse
import ipaddress
import socket
from urllib.parse import urlsplit

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import (
    VALUE_STYLES,
    normalize_prefix,
)


def prefix_arg(text):
    try:
        return normalize_prefix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def seconds_arg(text):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError("expected a whole number of seconds, got %r" % (text,))
    if value < 0:
        raise argparse.ArgumentTypeError("expected 0 or more seconds, got %d" % value)
    return value


def ttl_arg(text):
    value = seconds_arg(text)
    if value == 1:
        raise argparse.ArgumentTypeError("ttl 1 leaves no time to renew the keys: use 0 (no TTL) or 2 or more")
    return value


def style_arg(text):
    if text not in VALUE_STYLES:
        raise argparse.ArgumentTypeError("expected one of %s, got %r" % (", ".join(VALUE_STYLES), text))
    return text


def address_arg(text):
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an IP address" % (text,))
    if address.is_unspecified or address.is_loopback:
        raise argparse.ArgumentTypeError("%s cannot be reached from other nodes" % address)
    return address.compressed


def port_arg(text):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError("expected a port number, got %r" % (text,))
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError("port %d is out of range 1-65535" % value)
    return value


def route_source_address(host, port=2379):
    """The local address this machine sends from to reach ``host`` (no packet is sent)."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    for family, socktype, proto, dummy, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            sock.connect(sockaddr)
            return sock.getsockname()[0]
        except OSError:
            continue
        finally:
            sock.close()
    return None


def detect_advertise_ip(endpoints):
    """The address this node uses to reach etcd (the cluster network), or None.

    Loopback endpoints say nothing about the cluster network; then the address of the default
    route is used.
    """
    candidates = []
    for url in endpoints or ():
        host = urlsplit(url).hostname
        if host:
            candidates.append(host)
    candidates.append("192.0.2.1")  # TEST-NET-1: only the routing table is consulted
    for host in candidates:
        try:
            address = route_source_address(host)
        except OSError:
            continue
        if not address:
            continue
        parsed = ipaddress.ip_address(address.split("%")[0])
        if not parsed.is_loopback and not parsed.is_unspecified:
            return parsed.compressed
    return None
