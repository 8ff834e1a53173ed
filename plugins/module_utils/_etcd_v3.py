# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""etcd v3 backend over etcd's JSON gateway (``/v3/...``), standard library only.

Mapping of the common model onto v3:

* a "directory" ``/a`` is the set of keys starting with ``/a/``; it exists
  while such keys exist, and has no TTL. When a key ``/a`` and keys below
  ``/a/`` both exist, the key wins (reads return its value).
* a TTL is a lease granted for the write; keys written by one ``set_many``
  call with a TTL share one lease.
* compare-and-swap is a transaction; ``prev_value`` compares the value,
  ``prev_index`` the ``mod_revision``, ``prev_exist`` the ``version``.
* ``index`` is ``mod_revision``; ``revision`` the header revision.
"""

from __future__ import annotations

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_auth import V3Access
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_backend import EtcdBackend
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (
    ACTION_CREATE,
    ACTION_DELETE,
    ACTION_UPDATE,
    EtcdCompareFailed,
    EtcdDirNotEmpty,
    EtcdEvent,
    EtcdKeyExists,
    EtcdKeyNotFound,
    EtcdLockLost,
    EtcdNode,
    EtcdNotADir,
    EtcdNotAFile,
    EtcdOp,
    EtcdServerError,
    EtcdUnsupported,
    actual_of,
    conditions_hold,
    dir_prefix,
    expected_of,
    prefix_range_end,
    strip_dir_key,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_v3_gateway import (
    LeaseNotFound,
    as_int,
    b64,
    hex_id,
    unb64,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_v3_watch import V3WatchingGateway

# etcd refuses transactions with more than --max-txn-ops (default 128) operations
TXN_CHUNK = 64
_CAS_RETRIES = 5


class V3Backend(V3WatchingGateway, EtcdBackend):
    """Key operations for one endpoint through the v3 JSON gateway."""

    api_version = 'v3'
    supports_directories = False
    supports_leases = True

    @classmethod
    def check_available(cls):
        """Standard library only: always available."""

    @classmethod
    def connect(cls, endpoint, timeout, ssl_context=None, username=None, password=None,
                ca_cert=None, client_cert=None, client_key=None):
        return cls(endpoint, timeout, ssl_context=ssl_context, username=username, password=password,
                   has_client_cert=bool(client_cert))

    def close(self):
        self.close_watch()
        self.transport.close()

    # -- etcd v3 leases ------------------------------------------------------------------

    def grant(self, ttl):
        result = self._post('/lease/grant', {'TTL': str(int(ttl)), 'ID': '0'})
        lease = as_int(result.get('ID'))
        if not lease:
            raise EtcdServerError('lease grant returned no lease: %s' % (result.get('error') or result))
        return lease

    def revoke(self, lease):
        try:
            self._post('/lease/revoke', {'ID': str(lease)})
        except LeaseNotFound:
            pass

    def _revoke_quietly(self, lease):
        if not lease:
            return
        try:
            self.revoke(lease)
        except Exception:  # pylint: disable=broad-except
            pass

    def keepalive(self, lease):
        """Renew ``lease``; return its new TTL (0 when it has expired)."""
        try:
            result = self._post('/lease/keepalive', {'ID': str(lease)})
        except LeaseNotFound:
            return 0
        return as_int((result.get('result') or result).get('TTL'))

    def _time_to_live(self, lease, keys=False):
        """The gateway's answer about ``lease`` (with its keys when asked), None when it has expired."""
        try:
            result = self._post('/lease/timetolive', dict({'ID': str(lease)}, **({'keys': True} if keys else {})))
        except LeaseNotFound:
            return None
        return result if as_int(result.get('TTL'), -1) >= 0 else None

    def lease_keys(self, lease):
        result = self._time_to_live(lease, keys=True)
        return None if result is None else set(unb64(key) for key in result.get('keys') or [])

    def time_to_live(self, lease):
        """Return ``(remaining, granted)`` seconds; remaining is -1 for an expired lease."""
        result = self._time_to_live(lease)
        if result is None:
            return -1, 0
        return as_int(result.get('TTL'), -1), as_int(result.get('grantedTTL'))

    def _fill_ttls(self, nodes):
        cache = {}
        for node in nodes:
            if node.lease:
                if node.lease not in cache:
                    cache[node.lease] = self.time_to_live(node.lease)[0]
                node.ttl = max(cache[node.lease], 0)

    # -- reads -----------------------------------------------------------------

    def get(self, key, recursive=False):
        prefix = dir_prefix(key)
        pb = prefix.encode('utf-8')
        succeeded, responses, revision = self._txn(
            [{'key': b64(key), 'target': 'VERSION', 'result': 'GREATER', 'version': '0'}],
            [self._range_op(key)],
            [self._range_op(pb, prefix_range_end(pb))],
            key=key)
        kvs = self._range_kvs(responses[0]) if responses else []
        if succeeded and kvs:
            node = self._kv_node(kvs[0], revision)
            self._fill_ttls([node])
            return node
        if not kvs:
            raise EtcdKeyNotFound('key not found: %s' % key, key=key, revision=revision)
        nodes = [self._kv_node(kv, revision) for kv in kvs]
        self._fill_ttls(nodes)
        return self._build_dir(key, prefix, nodes, recursive, revision)

    def revision(self, key):
        result = self._post('/kv/range', {'key': b64(key), 'count_only': True}, key=key)
        return self._revision(result)

    def get_many(self, keys):
        """Return ``{key: EtcdNode or None}``; directories come back without children."""
        result = {}
        keys = list(keys)
        nodes = []
        for start in range(0, len(keys), TXN_CHUNK):
            chunk = keys[start:start + TXN_CHUNK]
            ops = []
            for key in chunk:
                pb = dir_prefix(key).encode('utf-8')
                ops.append(self._range_op(key))
                ops.append(self._range_op(pb, prefix_range_end(pb), count_only=True))
            dummy, responses, revision = self._txn([], ops)
            for i, key in enumerate(chunk):
                kvs = self._range_kvs(responses[2 * i])
                if kvs:
                    node = self._kv_node(kvs[0], revision)
                    nodes.append(node)
                    result[key] = node
                elif self._range_count(responses[2 * i + 1]):
                    result[key] = EtcdNode(strip_dir_key(key), dir=True, revision=revision)
                else:
                    result[key] = None
        self._fill_ttls(nodes)
        return result

    # -- writes ----------------------------------------------------------------

    def set(self, key, value, ttl=None, prev_value=None, prev_index=None, prev_exist=None, lease=None):
        """``lease``: attach the key to that existing lease instead of granting one for ``ttl``;
        EtcdLockLost when the lease has expired."""
        if lease:
            try:
                return self._set(key, value, None, prev_value, prev_index, prev_exist, lease)
            except LeaseNotFound:
                raise EtcdLockLost('lease %x has expired; cannot attach %s to it' % (lease, key),
                                   key=key) from None
        return self._set(key, value, ttl, prev_value, prev_index, prev_exist, None)

    def _set(self, key, value, ttl, prev_value, prev_index, prev_exist, given_lease):
        prefix = dir_prefix(key)
        pb = prefix.encode('utf-8')
        allow_children = False
        for dummy in range(_CAS_RETRIES):
            lease = given_lease or (self.grant(ttl) if ttl else 0)
            compares = self._cas_compares(key, prev_value, prev_index, prev_exist)
            if not allow_children:
                compares.append(self._no_children(prefix))
            put = {'key': b64(key), 'value': b64(value), 'prev_kv': True}
            if lease:
                put['lease'] = str(lease)
            try:
                succeeded, responses, revision = self._txn(
                    compares, [{'request_put': put}],
                    [self._range_op(key), self._range_op(pb, prefix_range_end(pb), count_only=True)],
                    key=key)
            except Exception:
                if not given_lease:
                    self._revoke_quietly(lease)
                raise
            if succeeded:
                prev_kv = (responses[0].get('response_put') or {}).get('prev_kv') if responses else None
                prev = self._kv_node(prev_kv, revision) if prev_kv else None
                node = EtcdNode(key, value, index=revision,
                                created_index=prev.created_index if prev else revision,
                                version=(prev.version + 1) if prev else 1,
                                ttl=ttl, lease=lease or None, revision=revision)
                return EtcdEvent(ACTION_UPDATE if prev else ACTION_CREATE, key, node, prev,
                                 index=revision, raw_action='PUT')
            if not given_lease:
                self._revoke_quietly(lease)
            actual, children = self._exact_and_children(responses, revision)
            if actual is None and children:
                raise EtcdNotAFile('%s is a directory (%d keys below %s), it cannot hold a value'
                                   % (key, children, prefix), key=key)
            if not conditions_hold(actual, prev_value, prev_index, prev_exist):
                raise EtcdCompareFailed(key, expected_of(prev_value, prev_index, prev_exist),
                                        actual_of(actual))
            if actual is not None and children:
                # the key itself exists next to keys below it: the key wins
                allow_children = True
            # else the key changed between the transaction and now: try again
        raise EtcdServerError('could not write %s: it kept changing concurrently' % key, key=key)

    def set_many(self, items, ttl=None):
        """Write ``{key: value}``; keys written with a TTL share one lease."""
        events = []
        pairs = list(items.items())
        lease = self.grant(ttl) if ttl and pairs else 0
        try:
            for start in range(0, len(pairs), TXN_CHUNK):
                chunk = pairs[start:start + TXN_CHUNK]
                compares = [self._no_children(dir_prefix(key)) for key, dummy in chunk]
                puts = []
                for key, value in chunk:
                    put = {'key': b64(key), 'value': b64(value), 'prev_kv': True}
                    if lease:
                        put['lease'] = str(lease)
                    puts.append({'request_put': put})
                succeeded, responses, revision = self._txn(compares, puts)
                if not succeeded:
                    # some key is a directory: write one by one for a precise error
                    for key, value in chunk:
                        events.append(self.set(key, value, ttl=ttl))
                    continue
                for (key, value), resp in zip(chunk, responses):
                    prev_kv = (resp.get('response_put') or {}).get('prev_kv')
                    prev = self._kv_node(prev_kv, revision) if prev_kv else None
                    node = EtcdNode(key, value, index=revision,
                                    created_index=prev.created_index if prev else revision,
                                    version=(prev.version + 1) if prev else 1,
                                    ttl=ttl, lease=lease or None, revision=revision)
                    events.append(EtcdEvent(ACTION_UPDATE if prev else ACTION_CREATE, key, node,
                                            prev, index=revision, raw_action='PUT'))
        except Exception:
            if lease and not events:
                self._revoke_quietly(lease)
            raise
        return events

    @staticmethod
    def _op_chunks(ops, indexes):
        """Split ``indexes`` into transactions etcd accepts: at most TXN_CHUNK operations and
        2 * TXN_CHUNK compares, every key at most once."""
        chunk, keys, compares = [], set(), 0
        for i in indexes:
            op = ops[i]
            cost = 1 + sum(1 for c in (op.prev_value, op.prev_index, op.prev_exist) if c is not None)
            if chunk and (len(chunk) >= TXN_CHUNK or op.key in keys or compares + cost > 2 * TXN_CHUNK):
                yield chunk
                chunk, keys, compares = [], set(), 0
            chunk.append(i)
            keys.add(op.key)
            compares += cost
        if chunk:
            yield chunk

    def _op_request(self, op, leases):
        """``(compares, success request)`` of one op; grants the lease of its TTL when needed."""
        kb = b64(op.key)
        if op.action == EtcdOp.DELETE:
            compares = [{'key': kb, 'target': 'VERSION', 'result': 'GREATER', 'version': '0'}]
            compares.extend(self._cas_compares(op.key, op.prev_value, op.prev_index))
            return compares, {'request_delete_range': {'key': kb, 'prev_kv': True}}
        compares = self._cas_compares(op.key, op.prev_value, op.prev_index, op.prev_exist)
        compares.append(self._no_children(dir_prefix(op.key)))
        put = {'key': kb, 'value': b64(op.value), 'prev_kv': True}
        if op.ttl:
            if op.ttl not in leases:
                leases[op.ttl] = self.grant(op.ttl)
            put['lease'] = str(leases[op.ttl])
        return compares, {'request_put': put}

    def _op_event(self, op, response, revision, leases):
        if op.action == EtcdOp.DELETE:
            prev_kvs = (response.get('response_delete_range') or {}).get('prev_kvs') or []
            prev = self._kv_node(prev_kvs[0], revision) if prev_kvs else None
            return EtcdEvent(ACTION_DELETE, op.key, None, prev, index=revision, raw_action='DELETE')
        prev_kv = (response.get('response_put') or {}).get('prev_kv')
        prev = self._kv_node(prev_kv, revision) if prev_kv else None
        node = EtcdNode(op.key, op.value, index=revision,
                        created_index=prev.created_index if prev else revision,
                        version=(prev.version + 1) if prev else 1,
                        ttl=op.ttl, lease=leases.get(op.ttl) if op.ttl else None, revision=revision)
        return EtcdEvent(ACTION_UPDATE if prev else ACTION_CREATE, op.key, node, prev,
                         index=revision, raw_action='PUT')

    def write_each(self, ops):
        """Independent ops in transactions: when one fails its conditions, the transaction reads
        every key instead; the ops whose conditions do not hold get their error, the others go
        again. Ops still failing after that (a directory in the way, keys changing meanwhile) are
        made one by one for a precise answer. Keys written with the same TTL share one lease."""
        results = [None] * len(ops)
        leases = {}
        used = set()
        pending = list(range(len(ops)))
        try:
            for dummy in range(_CAS_RETRIES):
                if not pending:
                    break
                again = []
                for chunk in self._op_chunks(ops, pending):
                    compares, success = [], []
                    for i in chunk:
                        more, request = self._op_request(ops[i], leases)
                        compares.extend(more)
                        success.append(request)
                    succeeded, responses, revision = self._txn(
                        compares, success, [self._range_op(ops[i].key) for i in chunk], key=ops[chunk[0]].key)
                    for i, response in zip(chunk, responses):
                        op = ops[i]
                        if succeeded:
                            results[i] = self._op_event(op, response, revision, leases)
                            if op.action == EtcdOp.SET and op.ttl:
                                used.add(op.ttl)
                            continue
                        kvs = self._range_kvs(response)
                        node = self._kv_node(kvs[0], revision) if kvs else None
                        if op.holds_for(node):
                            again.append(i)
                        else:
                            results[i] = op.failure(node, revision)
                pending = again
            for i in pending:
                results[i] = ops[i].apply_alone(self)
        finally:
            for ttl, lease in leases.items():
                if ttl not in used:
                    self._revoke_quietly(lease)
        return results

    def refresh(self, key, ttl, prev_value=None, prev_index=None):
        prefix = dir_prefix(key)
        pb = prefix.encode('utf-8')
        for dummy in range(_CAS_RETRIES):
            dummy_ok, responses, revision = self._txn(
                [], [self._range_op(key), self._range_op(pb, prefix_range_end(pb), count_only=True)],
                key=key)
            node, children = self._exact_and_children(responses, revision)
            if node is None:
                if children:
                    raise EtcdUnsupported('%s is a directory; directories have no TTL with the v3 API'
                                          % key, key=key)
                raise EtcdKeyNotFound('cannot refresh %s: key not found' % key, key=key,
                                      revision=revision)
            if not conditions_hold(node, prev_value, prev_index):
                raise EtcdCompareFailed(key, expected_of(prev_value, prev_index), actual_of(node))
            if node.lease:
                remaining, granted = self.time_to_live(node.lease)
                if remaining >= 0 and granted == ttl:
                    new_ttl = self.keepalive(node.lease)
                    if new_ttl > 0:
                        node.ttl = new_ttl
                        return node
                    continue
            # attach the key to a new lease of the wanted TTL without changing its value
            lease = self.grant(ttl)
            try:
                succeeded, responses, revision = self._txn(
                    [{'key': b64(key), 'target': 'MOD', 'result': 'EQUAL',
                      'mod_revision': str(node.index)}],
                    [{'request_put': {'key': b64(key), 'ignore_value': True, 'lease': str(lease)}}],
                    key=key)
            except Exception:
                self._revoke_quietly(lease)
                raise
            if succeeded:
                node.ttl = ttl
                node.lease = lease
                node.index = revision
                node.revision = revision
                node.version = (node.version or 0) + 1
                return node
            self._revoke_quietly(lease)
        raise EtcdServerError('could not refresh %s: it kept changing concurrently' % key, key=key)

    def mkdir(self, key, ttl=None):
        if ttl:
            raise EtcdUnsupported('directories have no TTL with the v3 API (%s)' % key, key=key)
        pb = dir_prefix(key).encode('utf-8')
        dummy, responses, revision = self._txn(
            [], [self._range_op(key), self._range_op(pb, prefix_range_end(pb), count_only=True)],
            key=key)
        actual, children = self._exact_and_children(responses, revision)
        if actual is not None:
            raise EtcdKeyExists('%s already exists and holds a value' % key, key=key)
        if children:
            raise EtcdKeyExists('directory %s already exists' % key, key=key)
        node = EtcdNode(strip_dir_key(key), dir=True, revision=revision)
        return EtcdEvent(ACTION_CREATE, node.key, node, None, index=revision, raw_action='none')

    def delete(self, key, recursive=False, dir=False, prev_value=None, prev_index=None):
        prefix = dir_prefix(key)
        pb = prefix.encode('utf-8')
        end = prefix_range_end(pb)
        cas = prev_value is not None or prev_index is not None
        if recursive and not cas:
            dummy, responses, revision = self._txn(
                [],
                [{'request_delete_range': {'key': b64(key), 'prev_kv': True}},
                 {'request_delete_range': {'key': b64(pb), 'range_end': b64(end), 'prev_kv': True}}],
                key=key)
            exact = ((responses[0].get('response_delete_range') or {}).get('prev_kvs') or []) if responses else []
            below = ((responses[1].get('response_delete_range') or {}).get('prev_kvs') or []) if len(responses) > 1 else []
            if not exact and not below:
                raise EtcdKeyNotFound('key not found: %s' % key, key=key, revision=revision)
            below_nodes = [self._kv_node(kv, revision) for kv in below]
            if exact:
                prev = self._kv_node(exact[0], revision)
                if below_nodes:
                    prev.children = self._build_dir(key, prefix, below_nodes, True, revision).children
            else:
                prev = self._build_dir(key, prefix, below_nodes, True, revision)
            return EtcdEvent(ACTION_DELETE, strip_dir_key(key), None, prev, index=revision,
                             raw_action='DELETE')
        if dir and not cas:
            dummy, responses, revision = self._txn(
                [], [self._range_op(key), self._range_op(pb, end, count_only=True)], key=key)
            actual, children = self._exact_and_children(responses, revision)
            if actual is not None:
                raise EtcdNotADir('%s holds a value, it is not a directory' % key, key=key)
            if children:
                raise EtcdDirNotEmpty('directory %s is not empty (%d keys); use recursive'
                                      % (key, children), key=key)
            raise EtcdKeyNotFound('key not found: %s' % key, key=key, revision=revision)
        compares = [{'key': b64(key), 'target': 'VERSION', 'result': 'GREATER', 'version': '0'}]
        compares.extend(self._cas_compares(key, prev_value, prev_index))
        succeeded, responses, revision = self._txn(
            compares,
            [{'request_delete_range': {'key': b64(key), 'prev_kv': True}}],
            [self._range_op(key), self._range_op(pb, end, count_only=True)],
            key=key)
        if succeeded:
            prev_kvs = (responses[0].get('response_delete_range') or {}).get('prev_kvs') or []
            prev = self._kv_node(prev_kvs[0], revision) if prev_kvs else None
            return EtcdEvent(ACTION_DELETE, key, None, prev, index=revision, raw_action='DELETE')
        actual, children = self._exact_and_children(responses, revision)
        if actual is None and children:
            if cas:
                raise EtcdCompareFailed(key, expected_of(prev_value, prev_index),
                                        {'exists': True, 'dir': True})
            raise EtcdNotAFile('%s is a directory (%d keys below %s); use recursive to delete it'
                               % (key, children, prefix), key=key)
        if actual is None:
            if cas:
                raise EtcdCompareFailed(key, expected_of(prev_value, prev_index), actual_of(None))
            raise EtcdKeyNotFound('key not found: %s' % key, key=key, revision=revision)
        raise EtcdCompareFailed(key, expected_of(prev_value, prev_index), actual_of(actual))

    # -- cluster ---------------------------------------------------------------

    def members(self):
        result = self._post('/cluster/member/list', {})
        members = []
        for member in result.get('members') or []:
            members.append({
                'id': hex_id(member.get('ID')),
                'name': member.get('name') or '',
                'peer_urls': list(member.get('peerURLs') or []),
                'client_urls': list(member.get('clientURLs') or []),
                'is_learner': bool(member.get('isLearner')),
            })
        header = result.get('header') or {}
        return hex_id(header.get('cluster_id')), members

    def status(self):
        result = self._post('/maintenance/status', {})
        header = result.get('header') or {}
        return {
            'member_id': hex_id(header.get('member_id')),
            'leader': hex_id(result.get('leader')),
            'version': result.get('version'),
            'db_size': as_int(result.get('dbSize')),
            'raft_index': as_int(result.get('raftIndex')),
            'raft_term': as_int(result.get('raftTerm')),
            'errors': list(result.get('errors') or []),
        }

    def health(self):
        return self.transport.member_health(headers=self._headers())

    def access(self):
        return V3Access(self)

    def version(self):
        return self.transport.member_version()
