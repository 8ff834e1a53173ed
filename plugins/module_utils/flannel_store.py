# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and writing flannel's network config and leases in etcd.

``FlannelStore`` does flanneld's etcd work over ``EtcdClient`` (v2 or v3 API
alike): read the network config, write it once, list the leases, acquire
this host's lease and renew it.  Key layout and value formats come from
``flannel_network``.

Acquiring follows flanneld 0.12: a host reuses the lease carrying its own
PublicIP (refreshed, with its new attributes), else takes a random free
subnet with a create-only write and retries when another host took it
first.  Unlike flanneld's plain-set renewal, :meth:`FlannelStore.renew` never
takes back a lease that was deleted or handed to another host: it raises
:class:`LeaseLost` and the caller acquires again.
"""

from __future__ import annotations

import random

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdCompareFailed,
    EtcdKeyNotFound,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.flannel_network import (
    DEFAULT_PREFIX,
    LEASE_TTL,
    FlannelConfigError,
    FlannelDataError,
    FlannelError,
    LeaseFormatError,
    NoFreeSubnet,
    choose_subnet,
    config_key,
    lease_key,
    lease_value,
    normalize_prefix,
    overlapping,
    parse_config,
    parse_lease,
    parse_public_ip,
    parse_subnet,
    parse_subnet_key,
    subnets_dir,
)

__all__ = ['FlannelStore', 'Leases', 'read_leases', 'LeaseLost', 'NoFreeSubnet', 'AcquireFailed', 'ACQUIRE_ATTEMPTS']

# Rounds of read-choose-write before giving up when other hosts keep taking the chosen subnet.
ACQUIRE_ATTEMPTS = 20
# Rounds of read-compare-write of a renewal whose key keeps changing.
_RENEW_ATTEMPTS = 3


class LeaseLost(FlannelError):
    """This host's lease is gone (expired, deleted) or now belongs to another host."""


class AcquireFailed(FlannelError):
    """Other hosts kept taking every subnet this host chose."""


class Leases(dict):
    """``{IPv4Network: Lease}`` of the valid leases, plus

    ``warnings``  one message per key skipped (bad key, bad value, outside the network);
    ``occupied``  the subnets of every lease key that names a subnet, valid value or not
                  (a new lease must avoid them all);
    ``revision``  the store revision of the read (watch from ``revision + 1``).
    """

    def __init__(self, revision=None):
        super(Leases, self).__init__()
        self.warnings = []
        self.occupied = []
        self.revision = revision

    def of_host(self, public_ip):
        """The leases carrying ``public_ip``, lowest subnet first."""
        return sorted((lease for lease in self.values() if lease.public_ip == public_ip),
                      key=lambda lease: lease.subnet)


class FlannelStore(object):
    """flannel's keys under ``prefix`` (default ``/coreos.com/network``) over an :class:`EtcdClient`."""

    def __init__(self, client, prefix=DEFAULT_PREFIX):
        self.client = client
        self.prefix = normalize_prefix(prefix)
        self.config_key = config_key(self.prefix)
        self.subnets_key = subnets_dir(self.prefix)

    def lease_key(self, subnet):
        return lease_key(self.prefix, subnet)

    def subnet_of(self, key):
        """The subnet a lease key names (``<prefix>/subnets/10.1.15.0-24``), else None (for watch
        events)."""
        base = self.subnets_key + '/'
        if not isinstance(key, str) or not key.startswith(base):
            return None
        try:
            return parse_subnet_key(key[len(base):])
        except LeaseFormatError:
            return None

    # -- network config ------------------------------------------------------------

    def config(self, default_backend=None):
        """The :class:`NetworkConfig` at ``<prefix>/config``; None when there is none.

        Raises :class:`FlannelConfigError` (or ``UnsupportedBackend``) when it is not usable;
        a config without Backend runs ``default_backend`` when one is given (see parse_config).
        """
        try:
            node = self.client.get(self.config_key)
        except EtcdKeyNotFound:
            return None
        if node.dir:
            raise FlannelConfigError('%s is a directory, not a network config' % self.config_key)
        return parse_config(node.value, default_backend)

    def write_config(self, text):
        """Write the network config ``text`` unless one is there already (never overwritten).

        The text is checked first (:func:`parse_config` errors). Returns True when written.
        """
        parse_config(text)
        if isinstance(text, bytes):
            text = text.decode('utf-8')
        try:
            self.client.set(self.config_key, text, prev_exist=False)
        except EtcdCompareFailed:
            return False
        return True

    # -- leases --------------------------------------------------------------------

    def leases(self, config=None):
        """Every valid lease, as :class:`Leases`; invalid ones are skipped with a warning.

        With ``config``, leases outside its Network are skipped too (a peer's
        lease must never make this host route other addresses).
        """
        try:
            root = self.client.get(self.subnets_key + '/', recursive=True)
        except EtcdKeyNotFound as exc:
            return Leases(revision=exc.revision)
        if not root.dir:
            result = Leases(revision=root.revision)
            result.warnings.append('%s holds a value, not leases: %r' % (self.subnets_key, root.value))
            return result
        return read_leases(self.subnets_key, ((node.key, node.value, node.ttl) for node in root.leaves()),
                           config=config, revision=root.revision)

    def acquire(self, public_ip, backend_type, backend_data=None, rng=None, ttl=LEASE_TTL,
                config=None, previous=None):
        """This host's :class:`Lease`: its existing one, refreshed, or a new one.

        The lease carrying ``public_ip`` is kept when it still fits the config
        (SubnetLen long, between SubnetMin and SubnetMax) and rewritten with
        the new attributes and ``ttl`` (a lease without TTL, a reservation,
        stays without). One that no longer fits is deleted. Otherwise
        ``previous`` (the subnet of the host's subnet file, if any) is tried,
        then a random free subnet (``rng``, a ``random.Random``) with a
        create-only write, again after a collision with another host.

        ``config`` is read from etcd when not given. Raises
        :class:`FlannelConfigError` (no or bad config, backend other than the
        config's), :class:`NoFreeSubnet`, :class:`AcquireFailed`.
        """
        value = lease_value(public_ip, backend_type, backend_data)
        public_ip = parse_public_ip(public_ip)
        ttl = _check_ttl(ttl)
        if config is None:
            config = self.config()
            if config is None:
                raise FlannelConfigError('no network config at %s' % self.config_key)
        if backend_type != config.backend_type:
            raise FlannelConfigError('backend type %r does not match the network config, which uses %r'
                                     % (backend_type, config.backend_type))
        if previous is not None:
            previous = parse_subnet(previous, 'previous subnet')
        rng = rng if rng is not None else random.SystemRandom()
        lost = []
        for dummy in range(ACQUIRE_ATTEMPTS):
            current = self.leases(config)
            mine = current.of_host(public_ip)
            kept = [lease for lease in mine if config.compatible(lease.subnet)]
            if kept:
                lease = self._keep(kept[0], value, ttl)
                if lease is not None:
                    return lease
                continue  # changed meanwhile: look again
            for lease in mine:
                self._delete_quietly(lease)
            taken = current.occupied + lost
            subnet = None
            if (previous is not None and previous not in lost and config.compatible(previous)
                    and not any(overlapping(previous, other) for other in taken)):
                subnet = previous
            if subnet is None:
                subnet = choose_subnet(config, taken, rng)
            try:
                self.client.set(self.lease_key(subnet), value, ttl=ttl, prev_exist=False)
            except EtcdCompareFailed:
                lost.append(subnet)  # another host was quicker
                continue
            return parse_lease(subnet, value)._replace(ttl=ttl)
        raise AcquireFailed('could not acquire a lease for %s in %d attempts: other hosts took every '
                            'subnet chosen (%s)' % (public_ip, ACQUIRE_ATTEMPTS,
                                                    ', '.join(str(s) for s in lost[-5:]) or 'none'))

    def _keep(self, lease, value, ttl):
        """Rewrite our existing ``lease`` with ``value``; None when it changed since read."""
        key = self.lease_key(lease.subnet)
        try:
            if lease.ttl is None:
                # a reservation (no TTL): it stays one
                if lease.value != value:
                    self.client.set(key, value, prev_value=lease.value)
                return parse_lease(lease.subnet, value)
            self.client.set(key, value, ttl=ttl, prev_value=lease.value)
        except (EtcdCompareFailed, EtcdKeyNotFound):
            return None
        return parse_lease(lease.subnet, value)._replace(ttl=ttl)

    def release(self, public_ip):
        """Delete the leases carrying ``public_ip`` (a host leaving the network); the subnets freed."""
        freed = []
        for lease in self.leases().of_host(public_ip):
            self._delete_quietly(lease)
            freed.append(lease.subnet)
        return freed

    def _delete_quietly(self, lease):
        try:
            self.client.delete(self.lease_key(lease.subnet), prev_value=lease.value)
        except (EtcdCompareFailed, EtcdKeyNotFound):
            pass

    def renew(self, lease, ttl=LEASE_TTL):
        """Give ``lease`` (as returned by :meth:`acquire`) a fresh ``ttl``; return the renewed Lease.

        Compare-and-swap on the value read: raises :class:`LeaseLost` when the
        key is gone or holds another host's lease (or garbage), instead of
        taking it back. A changed value of the same host is rewritten with
        ``lease``'s; a lease without TTL (a reservation) is left without.
        """
        ttl = _check_ttl(ttl)
        key = self.lease_key(lease.subnet)
        for dummy in range(_RENEW_ATTEMPTS):
            try:
                node = self.client.get(key)
            except EtcdKeyNotFound:
                raise LeaseLost('lease %s of %s is gone (expired or deleted)' % (key, lease.public_ip)) from None
            if node.dir:
                raise LeaseLost('lease %s of %s is gone: a directory is there now' % (key, lease.public_ip))
            try:
                current = parse_lease(lease.subnet, node.value)
            except LeaseFormatError as exc:
                raise LeaseLost('lease %s of %s was overwritten: %s' % (key, lease.public_ip, exc)) from None
            if current.public_ip != lease.public_ip:
                raise LeaseLost('lease %s of %s now belongs to %s' % (key, lease.public_ip, current.public_ip))
            try:
                if node.ttl is None:
                    if node.value != lease.value:
                        self.client.set(key, lease.value, prev_value=node.value, prev_index=node.index)
                    return lease._replace(ttl=None)
                if node.value == lease.value:
                    self.client.refresh(key, ttl, prev_value=node.value, prev_index=node.index)
                else:
                    self.client.set(key, lease.value, ttl=ttl, prev_value=node.value, prev_index=node.index)
            except (EtcdCompareFailed, EtcdKeyNotFound):
                continue  # changed meanwhile: look again
            return lease._replace(ttl=ttl)
        raise LeaseLost('lease %s of %s kept changing under renewal' % (key, lease.public_ip))


def read_leases(subnets_key, entries, config=None, revision=None):
    """The :class:`Leases` of ``entries``, ``(key, value, ttl)`` triples of the keys below
    ``subnets_key`` (a read of the directory, or a watcher's copy of it): invalid ones are
    skipped with a warning, and with ``config`` those outside its Network too."""
    result = Leases(revision=revision)
    base = subnets_key + '/'
    for key, value, ttl in entries:
        name = key[len(base):] if key.startswith(base) else ''
        if not name or '/' in name:
            result.warnings.append('%s: not a lease key, skipped' % key)
            continue
        try:
            subnet = parse_subnet_key(name)
        except LeaseFormatError as exc:
            result.warnings.append('%s: skipped: %s' % (key, exc))
            continue
        result.occupied.append(subnet)
        try:
            lease = parse_lease(subnet, value)
        except LeaseFormatError as exc:
            result.warnings.append('%s: skipped: %s' % (key, exc))
            continue
        if config is not None and not subnet.subnet_of(config.network):
            result.warnings.append('%s: skipped: the subnet is outside the Network %s' % (key, config.network))
            continue
        result[subnet] = lease._replace(ttl=ttl)
    return result


def _check_ttl(ttl):
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise FlannelDataError('the lease TTL must be a positive number of seconds, got %r' % (ttl,))
    return ttl
