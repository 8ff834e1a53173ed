# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service store in memory: one process, no expiry clock (``expire()`` drops a key as an
expired TTL would). Used by tests and by anything that runs the daemons' logic in-process."""

import threading
from typing import NamedTuple, Optional


class MemoryStoreDown(Exception):
    """Raised by every call while the store is ``down`` (an unreachable registry)."""


class MemoryEntry(NamedTuple):
    value: Optional[str]
    lease: Optional[int] = None


class MemoryServiceStore(object):
    """``ServiceStore`` on a dict; ``down = True`` makes every call fail like a lost registry."""

    errors = (MemoryStoreDown,)
    endpoints = ()

    def __init__(self, values=None):
        self.data = {}            # key -> MemoryEntry
        self.revision = 0
        self.down = False
        self._changed = threading.Condition()
        self._leases = 0
        for key, value in (values or {}).items():
            self.data[key] = MemoryEntry(value)

    def _check(self):
        if self.down:
            raise MemoryStoreDown("store is unreachable")

    def _set(self, key, entry):
        with self._changed:
            if entry is None:
                existed = self.data.pop(key, None) is not None
            else:
                existed = True
                self.data[key] = entry
            self.revision += 1
            self._changed.notify_all()
        return existed

    # -- ServiceStore --------------------------------------------------------------------------
    def values(self):
        """``{key: value}`` of every key (for assertions)."""
        return dict((k, e.value) for k, e in self.data.items())

    def expire(self, key):
        """Drop ``key`` as an expired TTL would."""
        self._set(key, None)

    @classmethod
    def from_environ(cls, environ=None):
        return cls()

    def read(self, prefix):
        self._check()
        below = prefix.rstrip("/") + "/"
        return dict((k, e) for k, e in self.data.items() if k.startswith(below))

    def put(self, key, value):
        self._check()
        self._set(key, MemoryEntry(value))

    def delete(self, key, prev_value=None):
        self._check()
        entry = self.data.get(key)
        if entry is None or (prev_value is not None and entry.value != prev_value):
            return False
        return self._set(key, None)

    def key_keeper(self, ttl):
        self._leases += 1
        return MemoryKeyKeeper(self, self._leases)

    def watch(self, prefix):
        return MemoryWatch(self, prefix)

    def close(self):
        pass


class MemoryKeyKeeper(object):
    """``KeyKeeper`` of a MemoryServiceStore: the keys it keeps carry its id."""

    def __init__(self, store, lease_id):
        self.store = store
        self.id = lease_id
        self._keys = {}
        self._taken = []

    def __contains__(self, key):
        return key in self._keys

    def put(self, key, value):
        self.store._check()  # pylint: disable=protected-access
        self.store._set(key, MemoryEntry(value, self.id))  # pylint: disable=protected-access
        self._keys[key] = value

    def keep(self, key, value, current=None):
        if current is not None and current.value == value and current.lease == self.id:
            self._keys[key] = value
            return False
        self.put(key, value)
        return True

    def delete(self, key):
        self._keys.pop(key, None)
        return self.store.delete(key)

    def keepalive(self):
        self.store._check()  # pylint: disable=protected-access
        lost = sorted(k for k, v in self._keys.items() if k not in self.store.data)
        taken = sorted(k for k in self._keys if k not in lost and self.store.data[k].lease != self.id)
        for key in taken:
            del self._keys[key]
        self._taken.extend(taken)
        for key in lost:
            self.put(key, self._keys[key])
        return lost

    def taken_over(self):
        taken, self._taken = sorted(self._taken), []
        return taken

    def revoke(self):
        keys = sorted(self._keys)
        for key in keys:
            self.store.delete(key, prev_value=self._keys[key])
        self._keys = {}
        return keys


class MemoryWatch(object):
    """``PrefixWatch`` of a MemoryServiceStore: ``wait()`` returns once the store changed."""

    def __init__(self, store, prefix):
        self.store = store
        self.prefix = prefix
        self.values = {}
        self.revision = None
        self._interrupted = False

    def _read(self):
        return dict((k, e.value) for k, e in self.store.read(self.prefix).items())

    def load(self):
        with self.store._changed:  # pylint: disable=protected-access
            self.values = self._read()
            self.revision = self.store.revision
        return self.values

    def start(self):
        pass

    def wait(self, debounce=0.2, max_delay=2.0, timeout=None):
        condition = self.store._changed  # pylint: disable=protected-access
        with condition:
            condition.wait_for(lambda: self._interrupted or self.store.revision != self.revision, timeout)
            if self._interrupted:
                return None
            changes = self.store.revision - self.revision
            self.values = self._read()
            self.revision = self.store.revision
            return changes

    def interrupt(self):
        with self.store._changed:  # pylint: disable=protected-access
            self._interrupted = True
            self.store._changed.notify_all()  # pylint: disable=protected-access

    def close(self):
        return True
