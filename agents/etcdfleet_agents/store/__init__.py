# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service store edge (see store/base.py for the interface).

``open_store(environ)`` opens the backend named by ETCDFLEET_STORE (default ``etcd``). A new
backend is one module with a class implementing ``ServiceStore`` (and ``from_environ``) plus
one line in ``BACKENDS``.
"""

import os

from etcdfleet_agents.runtime import SettingsError
from etcdfleet_agents.store.etcd import EtcdServiceStore
from etcdfleet_agents.store.memory import MemoryServiceStore

BACKENDS = {
    "etcd": EtcdServiceStore,
    "memory": MemoryServiceStore,
}
DEFAULT_BACKEND = "etcd"
# What any backend raises when its registry fails (daemons catch these to retry).
STORE_ERRORS = tuple(error for backend in BACKENDS.values() for error in backend.errors)


def open_store(environ=None):
    """The service store of the node's settings (ETCDFLEET_STORE, then the backend's own)."""
    environ = os.environ if environ is None else environ
    name = (environ.get("ETCDFLEET_STORE") or DEFAULT_BACKEND).strip()
    if name not in BACKENDS:
        raise SettingsError("ETCDFLEET_STORE must be one of %s, got %r" % (", ".join(sorted(BACKENDS)), name))
    return BACKENDS[name].from_environ(environ)
