# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service store on etcd (v2 or v3), through the collection's etcd client layer.

Keys with a TTL live on an ``EtcdKeyKeeper`` (v3: one lease for all of them; v2: per-key TTLs
renewed with ``refresh``), so renewing them wakes no watcher; the prefix is followed with a
``PrefixMirror``.
"""

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdCompareFailed,
    EtcdError,
    EtcdKeyNotFound,
)

from etcdfleet_agents.runtime import client_from_environ
from etcdfleet_agents.store.etcd_mirror import PrefixMirror


class EtcdServiceStore(object):
    """``ServiceStore`` on an ``EtcdClient``."""

    errors = (EtcdError,)

    def __init__(self, client):
        self.client = client

    @classmethod
    def from_environ(cls, environ=None):
        """The store of the node's ETCDFLEET_* settings (see runtime.py)."""
        return cls(client_from_environ(environ))

    @property
    def endpoints(self):
        return self.client.endpoints

    def read(self, prefix):
        try:
            root = self.client.get(prefix or "/", recursive=True)
        except EtcdKeyNotFound:
            return {}
        found = {}

        def walk(node):
            if node.dir:
                for child in node.children or ():
                    walk(child)
            else:
                found[node.key] = node
        walk(root)
        return found

    def put(self, key, value):
        self.client.set(key, value)

    def delete(self, key, prev_value=None):
        try:
            if prev_value is None:
                self.client.delete(key)
            else:
                self.client.delete(key, prev_value=prev_value)
        except (EtcdKeyNotFound, EtcdCompareFailed):
            return False
        return True

    def key_keeper(self, ttl):
        return self.client.key_keeper(ttl)

    def watch(self, prefix):
        return PrefixMirror(self.client, prefix)

    def close(self):
        self.client.close()
