# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""EtcdKeyKeeper: keys of one owner, kept alive together in etcd (``EtcdClient.lease``).

Not to be confused with fleet's engine-leader lease (an EtcdLock on a fleet key) or with
the TTL of a single key: a keeper holds several keys, renews them all at once and writes
them again after they were lost.
"""

from __future__ import annotations

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (
    EtcdCompareFailed,
    EtcdKeyNotFound,
    EtcdLockLost,
    EtcdUsageError,
    to_text_value,
    validate_key,
    validate_ttl,
)


class EtcdKeyKeeper(object):
    """Keys of one owner that expire ``ttl`` seconds after the owner stops keeping them alive.

    Renewing them wakes no watcher. With a backend that has etcd v3 leases
    (``client.supports_leases``) every key is put on one lease and ``keepalive()`` renews the
    lease with a single request (and a second one listing the lease's keys); otherwise (v2) each
    key is written with the TTL and ``keepalive()`` renews each one with ``refresh=true``. When
    keys were lost meanwhile (etcd unreachable for longer than the TTL: the lease or the keys
    expired; or a key was deleted), ``keepalive()`` writes them again (on a fresh lease when the
    lease expired) and returns their names, so the owner can say so.

    A key found holding another value (v2), taken off the lease by another writer's put (v3), or
    written again by someone else after it expired, belongs to that writer now: the keeper stops keeping it and leaves it alone, and
    ``taken_over()`` names it (once), so the owner can say so.

    ``put`` writes a key and keeps it; ``keep`` keeps a key that already holds the wanted value
    without writing it when it can (v2 refresh; v3 when it is already on this lease); ``delete``
    removes a key; ``revoke`` deletes every kept key (v3: by revoking the lease). To leave the keys
    to expire, simply stop calling ``keepalive()``.
    """

    def __init__(self, client, ttl):
        self.client = client
        self.ttl = validate_ttl(ttl)
        if self.ttl is None:
            raise EtcdUsageError('a lease needs a ttl')
        self._on_lease = client.supports_leases
        self.lease_id = None
        self._keys = {}
        self._taken = []

    @property
    def keys(self):
        """``{key: value}`` of every key kept alive."""
        return dict(self._keys)

    def __contains__(self, key):
        return key in self._keys

    def __len__(self):
        return len(self._keys)

    def _grant(self):
        self.lease_id = self.client.grant_lease(self.ttl)
        return self.lease_id

    def _write(self, key, value):
        if not self._on_lease:
            return self.client.set(key, value, ttl=self.ttl)
        if self.lease_id is None:
            self._grant()
        return self.client.set_on_lease(key, value, self.lease_id)

    def _rewrite_all(self):
        """Put every kept key again on a new lease (v3) or with a new TTL (v2)."""
        if self._on_lease:
            self._grant()
        for key, value in sorted(self._keys.items()):
            self._write(key, value)
        return sorted(self._keys)

    def put(self, key, value):
        """Write ``key`` = ``value`` with this keeper's TTL and keep it alive; return the EtcdEvent."""
        validate_key(key)
        value = to_text_value(value)
        try:
            event = self._write(key, value)
        except EtcdLockLost:
            # the v3 lease expired: every key on it is gone, write them all again with this one
            self._keys[key] = value
            self._rewrite_all()
            return None
        self._keys[key] = value
        return event

    def keep(self, key, value, current=None):
        """Keep ``key`` = ``value`` alive; ``current`` is the EtcdNode read from etcd, if any.

        Returns True when the key had to be written (absent, another value, or on another v3
        lease) and False when it was taken over without a write.
        """
        validate_key(key)
        value = to_text_value(value)
        if current is not None and not current.dir and current.value == value:
            if not self._on_lease:
                try:
                    self.client.refresh(key, self.ttl, prev_value=value)
                    self._keys[key] = value
                    return False
                except (EtcdKeyNotFound, EtcdCompareFailed):
                    pass
            elif self.lease_id is not None and current.lease == self.lease_id:
                self._keys[key] = value
                return False
        self.put(key, value)
        return True

    def delete(self, key):
        """Delete ``key`` and stop keeping it; True when it was deleted. A kept key is deleted only
        while it holds the value this keeper wrote: another writer's value stays."""
        value = self._keys.pop(key, None)
        try:
            if value is None:
                self.client.delete(key)
            else:
                self.client.delete(key, prev_value=value)
        except (EtcdKeyNotFound, EtcdCompareFailed):
            return False
        return True

    def keepalive(self):
        """Renew every kept key without waking watchers; return the keys that had been lost
        and were written again (sorted)."""
        if not self._keys:
            return []
        if self._on_lease:
            if self.lease_id is not None:
                remaining = self.client.keep_lease_alive(self.lease_id)
                if remaining > 0:
                    return self._restore_detached()
            return self._rewrite_all()
        lost = []
        for key, value in sorted(self._keys.items()):
            expired = False
            try:
                self.client.refresh(key, self.ttl, prev_value=value)
                continue
            except EtcdKeyNotFound:
                expired = True
            except EtcdCompareFailed as exc:
                expired = exc.actual.get('exists') is False  # else: another writer's value now
            if expired:
                try:
                    self.client.set(key, value, ttl=self.ttl, prev_exist=False)
                    lost.append(key)
                    continue
                except EtcdCompareFailed:
                    pass  # written by another owner since it expired
            del self._keys[key]
            self._taken.append(key)
        return lost

    def _restore_detached(self):
        """v3: a kept key that is no longer on the lease was deleted (write it again, on the lease,
        only where it is still absent) or written by another writer (leave it to that one)."""
        attached = self.client.lease_keys(self.lease_id)
        if attached is None:
            return self._rewrite_all()
        lost = []
        for key, value in sorted(self._keys.items()):
            if key in attached:
                continue
            try:
                self.client.set_on_lease(key, value, self.lease_id, prev_exist=False)
                lost.append(key)
                continue
            except EtcdLockLost:
                return self._rewrite_all()
            except EtcdCompareFailed:
                pass  # another writer's key now
            del self._keys[key]
            self._taken.append(key)
        return lost

    def taken_over(self):
        """Keys no longer kept because another writer owns them now (each named once, sorted)."""
        taken, self._taken = sorted(self._taken), []
        return taken

    def revoke(self):
        """Delete every kept key now (v3: revoke the lease); return their names (sorted)."""
        keys = sorted(self._keys)
        if self._on_lease:
            if self.lease_id is not None:
                self.client.revoke_lease(self.lease_id)
        else:
            for key in keys:
                try:
                    self.client.delete(key, prev_value=self._keys[key])
                except (EtcdKeyNotFound, EtcdCompareFailed):
                    pass
        self._keys = {}
        self.lease_id = None
        return keys
