# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""EtcdLock: a TTL-bound lock on one etcd key, for leader election."""

from __future__ import annotations

import socket
import time
import uuid

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (
    EtcdCompareFailed,
    EtcdKeyNotFound,
    EtcdLockLost,
    EtcdUsageError,
    EtcdWatchIndexCleared,
    EtcdWatchTimeout,
    validate_key,
    validate_ttl,
)


class EtcdLock(object):
    """A TTL-bound lock: the key exists while its holder keeps refreshing it.

    v2: created with ``prevExist=false`` and a TTL, renewed with a
    compare-and-refresh on the owner's value, released with a
    compare-and-delete. v3: the same through a lease and transactions. Good
    for leader election: the holder calls ``refresh()`` well within ``ttl``;
    if it stops, the key expires and another candidate's ``acquire`` wins.
    """

    def __init__(self, client, key, ttl, value=None):
        validate_key(key)
        self.client = client
        self.key = key
        self.ttl = validate_ttl(ttl)
        if self.ttl is None:
            raise EtcdUsageError('a lock needs a ttl')
        self.value = value if value is not None else '%s-%s' % (socket.gethostname(), uuid.uuid4().hex)
        self.held = False

    def acquire(self, blocking=False, timeout=None):
        """Take the lock; return True when held. ``blocking`` waits for the
        holder to go (up to ``timeout`` seconds, for ever when None)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                self.client.set(self.key, self.value, ttl=self.ttl, prev_exist=False)
                self.held = True
                return True
            except EtcdCompareFailed as exc:
                if exc.actual.get('value') == self.value:
                    self.refresh()
                    return True
                index = exc.actual.get('index')
            if not blocking:
                return False
            wait = float(self.ttl)
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return False
            try:
                self.client.watch(self.key, index=(index + 1) if index else None, timeout=wait)
            except (EtcdWatchTimeout, EtcdWatchIndexCleared):
                pass

    def refresh(self):
        """Renew the lock; raise EtcdLockLost when it is no longer ours."""
        try:
            node = self.client.refresh(self.key, self.ttl, prev_value=self.value)
        except (EtcdCompareFailed, EtcdKeyNotFound) as exc:
            self.held = False
            raise EtcdLockLost('lock %s is no longer held by %s: %s' % (self.key, self.value, exc),
                               key=self.key)
        self.held = True
        return node

    def release(self):
        """Give the lock up if it is still ours."""
        try:
            self.client.delete(self.key, prev_value=self.value)
        except (EtcdCompareFailed, EtcdKeyNotFound):
            pass
        self.held = False

    def holder(self):
        """The value of the current holder, or None."""
        try:
            node = self.client.get(self.key)
        except EtcdKeyNotFound:
            return None
        return node.value

    def __enter__(self):
        if not self.acquire(blocking=True):
            raise EtcdLockLost('could not acquire lock %s' % self.key, key=self.key)
        return self

    def __exit__(self, *exc_info):
        self.release()
