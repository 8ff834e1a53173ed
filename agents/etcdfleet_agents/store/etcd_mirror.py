# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local copy of one etcd prefix, kept in step by a watch, with bursts of changes coalesced.

``PrefixMirror`` reads the prefix once (recursively), then follows it with
``EtcdClient.watch_iter`` from the read's revision + 1 in a background thread. The owner's thread
calls ``wait()``, which blocks until the values changed and then until the burst is over (no
change for ``debounce`` seconds, or ``max_delay`` seconds after the first change), applies the
events to ``values`` and returns. A write that leaves a value as it was (a TTL refresh that
re-writes the key) changes nothing and wakes nobody. Lost watch history (``resync``) replaces the
whole copy with the fresh read. A watch that fails (etcd down) makes ``wait()`` raise, so the
daemon reconnects with backoff and starts over with a full read.

Used by the discover watcher; an ambassador following one service can use it as it is.
"""

import queue
import threading
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    ACTION_RESYNC,
    EtcdKeyNotFound,
)

_STOP = object()


class _Failure(object):
    def __init__(self, error):
        self.error = error


class WatchFailed(Exception):
    """The watch thread stopped on an error (carried as ``__cause__``)."""


def _leaves(node):
    if node is None:
        return {}
    return dict((leaf.key, leaf.value) for leaf in node.leaves() if leaf.value is not None)


class PrefixMirror(object):
    """``values``: ``{key: value}`` of every key below ``prefix`` as of the last ``wait()``."""

    def __init__(self, client, prefix, idle_timeout=30.0):
        self.client = client
        self.prefix = prefix
        self.idle_timeout = idle_timeout
        self.values = {}
        self.revision = None
        self._queue = queue.SimpleQueue()
        self._halt = threading.Event()
        self._thread = None

    # -- reading -----------------------------------------------------------------------------
    def load(self):
        """Full read of the prefix; returns ``values``."""
        try:
            node = self.client.get(self.prefix, recursive=True)
            self.values = _leaves(node)
            self.revision = node.revision
        except EtcdKeyNotFound as exc:
            self.values = {}
            self.revision = exc.revision if exc.revision is not None else self.client.revision("/")
        return self.values

    def _apply(self, event):
        """Apply one watch event to ``values``; True when a value changed."""
        if event.action == ACTION_RESYNC:
            fresh = _leaves(event.node)
            changed = fresh != self.values
            self.values = fresh
            return changed
        key = event.key
        if event.is_delete:
            below = key.rstrip("/") + "/"
            gone = [k for k in self.values if k == key or k.startswith(below)]
            for k in gone:
                del self.values[k]
            return bool(gone)
        node = event.node
        if node is None or node.dir or node.value is None:
            return False
        if self.values.get(key) == node.value:
            return False
        self.values[key] = node.value
        return True

    # -- following ---------------------------------------------------------------------------
    def start(self):
        """Start following from the revision of the last ``load()``."""
        if self.revision is None:
            self.load()
        self._halt.clear()
        self._thread = threading.Thread(target=self._follow, args=(self.revision + 1,),
                                        name="watch %s" % self.prefix, daemon=True)
        self._thread.start()

    def _follow(self, index):
        try:
            for event in self.client.watch_iter(self.prefix, recursive=True, index=index,
                                                idle_timeout=self.idle_timeout, resync=True):
                if self._halt.is_set():
                    return
                if event is not None:
                    self._queue.put(event)
        except Exception as exc:  # pylint: disable=broad-except
            if not self._halt.is_set():
                self._queue.put(_Failure(exc))

    def interrupt(self):
        """Make a blocked ``wait()`` return None (safe from a signal handler)."""
        self._queue.put(_STOP)

    def close(self):
        """Stop following; the watch thread ends at its next event or idle timeout.

        Returns True when no watch is running any more (the client may then be closed; while
        the thread still reads from it, closing it would block until the read returns).
        """
        self._halt.set()
        return self._thread is None or not self._thread.is_alive()

    def _take(self, timeout):
        item = self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()
        if item is _STOP:
            return _STOP
        if isinstance(item, _Failure):
            raise WatchFailed("watch of %s failed: %s: %s"
                              % (self.prefix, type(item.error).__name__, item.error)) from item.error
        return item

    def wait(self, debounce=0.2, max_delay=2.0, timeout=None):
        """Block until the values changed and the burst is over.

        Returns the number of events that changed a value (>= 1), 0 when ``timeout`` passed
        without a change, or None when ``interrupt()`` was called. Raises WatchFailed when the
        watch stopped on an error.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        changes = 0
        while not changes:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return 0
            try:
                item = self._take(remaining)
            except queue.Empty:
                return 0
            if item is _STOP:
                return None
            changes += 1 if self._apply(item) else 0
        first = time.monotonic()
        quiet_until = first + debounce
        while True:
            remaining = min(quiet_until, first + max_delay) - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._take(remaining)
            except queue.Empty:
                break
            if item is _STOP:
                return None
            if self._apply(item):
                changes += 1
                quiet_until = time.monotonic() + debounce
        return changes
