# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service store: where the service daemons publish and read the services prefix.

The registrator, the announcer, docker-discover and the ambassador talk to the registry only
through this interface; ``store/etcd.py`` implements it on etcd (v2 or v3), ``store/memory.py``
in memory (tests, one process). A second registry (say Consul) is one more module implementing
``ServiceStore`` plus one line in ``store/__init__.py``'s ``BACKENDS``.
"""

from typing import Dict, Iterable, Optional, Protocol, Tuple, Type


class StoredEntry(Protocol):
    """One value read from the store (hand it back to ``KeyKeeper.keep`` as ``current``)."""

    value: Optional[str]


class KeyKeeper(Protocol):
    """Keys of one owner that expire ``ttl`` seconds after the owner stops keeping them alive."""

    def __contains__(self, key: str) -> bool:
        """True while the key is kept alive by this keeper."""

    def put(self, key: str, value: str) -> object:
        """Write ``key`` = ``value`` and keep it alive."""

    def keep(self, key: str, value: str, current: Optional[StoredEntry] = None) -> bool:
        """Keep ``key`` = ``value`` alive (``current``: what the store holds); True when written."""

    def delete(self, key: str) -> bool:
        """Delete ``key`` and stop keeping it; True when it existed."""

    def keepalive(self) -> Iterable[str]:
        """Renew every kept key; return the keys that had been lost and were written again."""

    def taken_over(self) -> Iterable[str]:
        """Keys no longer kept because another writer owns them now (each named once)."""

    def revoke(self) -> Iterable[str]:
        """Delete every kept key now; return their names."""


class PrefixWatch(Protocol):
    """A local copy of one prefix kept in step (see ``store/etcd_mirror.py`` for the contract)."""

    values: Dict[str, str]
    revision: object

    def load(self) -> Dict[str, str]:
        """Full read of the prefix; returns ``values``."""

    def start(self) -> None:
        """Follow the prefix from the read on, in the background."""

    def wait(self, debounce: float = 0.2, max_delay: float = 2.0, timeout: Optional[float] = None) -> Optional[int]:
        """Block until a burst of changes is over; the number of changes, 0 on timeout, None when
        interrupted."""

    def interrupt(self) -> None:
        """Make ``wait()`` return None."""

    def close(self) -> bool:
        """Stop following; True when nothing uses the store any more."""


class ServiceStore(Protocol):
    """The registry of the services prefix, as the service daemons use it.

    ``errors``: the exception types a failing store raises (daemons catch them to retry);
    ``endpoints``: the URLs the store is reached at (to find the address this node advertises).
    """

    errors: Tuple[Type[BaseException], ...]
    endpoints: Iterable[str]

    def read(self, prefix: str) -> Dict[str, StoredEntry]:
        """``{key: entry}`` of every value below ``prefix`` (empty when there is none)."""

    def put(self, key: str, value: str) -> None:
        """Write ``key`` = ``value`` with no expiry."""

    def delete(self, key: str, prev_value: Optional[str] = None) -> bool:
        """Delete ``key`` (only while it holds ``prev_value``, when given); False when it was
        absent or held another value."""

    def key_keeper(self, ttl: int) -> KeyKeeper:
        """A keeper whose keys expire ``ttl`` seconds after the last keepalive."""

    def watch(self, prefix: str) -> PrefixWatch:
        """A local copy of ``prefix`` kept in step with the store."""

    def close(self) -> None:
        """Release the store's connections."""
