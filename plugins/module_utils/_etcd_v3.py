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

import base64
import json
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (
    ACTION_CREATE,
    ACTION_DELETE,
    ACTION_UPDATE,
    EtcdAuthError,
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
    EtcdWatchIndexCleared,
    EtcdWatchTimeout,
    actual_of,
    conditions_hold,
    dir_prefix,
    expected_of,
    prefix_range_end,
    strip_dir_key,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_http import (
    EndpointUnavailable,
    HttpTransport,
    decode_json,
)

# etcd refuses transactions with more than --max-txn-ops (default 128) operations
TXN_CHUNK = 64
_CAS_RETRIES = 5


class _InvalidToken(Exception):
    pass


class _LeaseNotFound(Exception):
    pass


def _b64(text):
    if isinstance(text, str):
        text = text.encode('utf-8')
    return base64.b64encode(text).decode('ascii')


def _unb64(data):
    if not data:
        return ''
    return base64.b64decode(data).decode('utf-8', 'replace')


def _int(value, default=0):
    if value is None or value == '':
        return default
    return int(value)


def _hex_id(value):
    if value in (None, '', 0, '0'):
        return None
    return '%x' % int(value)


class V3Backend(object):
    """Key operations for one endpoint through the v3 JSON gateway."""

    api_version = 'v3'

    def __init__(self, endpoint, timeout, ssl_context=None, username=None, password=None,
                 has_client_cert=False, prefix='/v3', transport=None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.prefix = prefix
        self.transport = transport or HttpTransport(endpoint, timeout, ssl_context=ssl_context,
                                                    has_client_cert=has_client_cert)
        self._username = username
        self._password = password
        self._token = None
        self._auth_done = username is None
        self._watch = None

    def close(self):
        self.close_watch()
        self.transport.close()

    # -- plumbing -------------------------------------------------------------

    def _authenticate(self):
        status, data = self.transport.request_json(
            'POST', self.prefix + '/auth/authenticate',
            {'name': self._username, 'password': self._password or ''})
        if status == 200 and data and data.get('token'):
            self._token = data['token']
        else:
            message = self._error_message(data)
            if 'authentication is not enabled' in message:
                self._token = None
            else:
                self._raise(status, data, '/auth/authenticate', None)
        self._auth_done = True

    def _headers(self):
        if not self._auth_done:
            self._authenticate()
        if self._token:
            return {'Authorization': self._token}
        return None

    def _post(self, path, body, key=None, timeout=None):
        for attempt in (0, 1):
            headers = self._headers()
            status, data = self.transport.request_json('POST', self.prefix + path, body,
                                                       headers=headers, timeout=timeout)
            if status == 200:
                return data or {}
            try:
                self._raise(status, data, path, key)
            except _InvalidToken:
                if attempt == 0 and self._username is not None:
                    self._auth_done = False
                    self._token = None
                    continue
                raise EtcdAuthError('the cluster requires authentication: set username and password',
                                    key=key)
        raise EtcdAuthError('authentication token rejected twice', key=key)  # pragma: no cover

    @staticmethod
    def _error_message(data):
        if isinstance(data, dict) and 'http_error' in data:
            return data['http_error']
        if isinstance(data, dict):
            err = data.get('error')
            if isinstance(err, dict):
                return str(err.get('message') or err.get('error') or '')
            return str(data.get('message') or err or '')
        return ''

    def _raise(self, status, data, path, key):
        message = self._error_message(data)
        code = data.get('code') if isinstance(data, dict) else None
        if isinstance(data, dict) and isinstance(data.get('error'), dict):
            code = data['error'].get('code', code)
        low = message.lower()
        if isinstance(data, dict) and 'http_error' in data:
            # not an answer of etcd's gateway: the request was not processed
            raise EndpointUnavailable(self.endpoint, 'no etcd v3 JSON API at %s%s (HTTP %s: %s)' % (
                self.prefix, path, status, data['http_error'] or 'no text'))
        if 'invalid auth token' in low or 'user name is empty' in low or code == 16:
            raise _InvalidToken()
        if 'authentication failed' in low or 'invalid user id or password' in low:
            raise EtcdAuthError('authentication failed for user %r: wrong user name or password'
                                % self._username, key=key)
        if 'permission denied' in low or code == 7:
            raise EtcdAuthError('permission denied%s for user %r%s' % (
                ' on key %s' % key if key else '', self._username,
                '' if self._username else ' (no username given)'), key=key)
        if 'requested lease not found' in low:
            raise _LeaseNotFound()
        if 'compacted' in low:
            raise EtcdWatchIndexCleared('requested revision was compacted: %s' % message, key=key)
        if 'no leader' in low or 'leader changed' in low or code == 14:
            raise EndpointUnavailable(self.endpoint, 'member cannot serve requests: %s' % message)
        raise EtcdServerError('etcd v3 %s failed%s: %s (HTTP %s%s)' % (
            path, ' for key %s' % key if key else '', message or 'no error text', status,
            ', code %s' % code if code is not None else ''), key=key, code=code)

    def _revision(self, result):
        return _int((result or {}).get('header', {}).get('revision'))

    def _kv_node(self, kv, revision=None):
        return EtcdNode(
            key=_unb64(kv.get('key')),
            value=_unb64(kv.get('value')),
            index=_int(kv.get('mod_revision')),
            created_index=_int(kv.get('create_revision')),
            version=_int(kv.get('version')),
            lease=_int(kv.get('lease')) or None,
            revision=revision,
        )

    def _txn(self, compare, success, failure=None, key=None):
        body = {'compare': compare, 'success': success}
        if failure:
            body['failure'] = failure
        result = self._post('/kv/txn', body, key=key)
        return bool(result.get('succeeded')), result.get('responses') or [], self._revision(result)

    @staticmethod
    def _range_op(key, range_end=None, count_only=False, limit=None):
        req = {'key': _b64(key)}
        if range_end is not None:
            req['range_end'] = _b64(range_end)
        if count_only:
            req['count_only'] = True
        if limit:
            req['limit'] = str(limit)
        return {'request_range': req}

    @staticmethod
    def _cas_compares(key, prev_value=None, prev_index=None, prev_exist=None):
        kb = _b64(key)
        compares = []
        if prev_exist is True:
            compares.append({'key': kb, 'target': 'VERSION', 'result': 'GREATER', 'version': '0'})
        elif prev_exist is False:
            compares.append({'key': kb, 'target': 'VERSION', 'result': 'EQUAL', 'version': '0'})
        if prev_value is not None:
            compares.append({'key': kb, 'target': 'VALUE', 'result': 'EQUAL', 'value': _b64(prev_value)})
        if prev_index is not None:
            compares.append({'key': kb, 'target': 'MOD', 'result': 'EQUAL', 'mod_revision': str(prev_index)})
        return compares

    @staticmethod
    def _no_children(prefix):
        pb = prefix.encode('utf-8')
        return {'key': _b64(pb), 'range_end': _b64(prefix_range_end(pb)),
                'target': 'CREATE', 'result': 'EQUAL', 'create_revision': '0'}

    @staticmethod
    def _range_kvs(response):
        return (response.get('response_range') or {}).get('kvs') or []

    @staticmethod
    def _range_count(response):
        return _int((response.get('response_range') or {}).get('count'))

    # -- leases ------------------------------------------------------------------

    def grant(self, ttl):
        result = self._post('/lease/grant', {'TTL': str(int(ttl)), 'ID': '0'})
        lease = _int(result.get('ID'))
        if not lease:
            raise EtcdServerError('lease grant returned no lease: %s' % (result.get('error') or result))
        return lease

    def revoke(self, lease):
        try:
            self._post('/lease/revoke', {'ID': str(lease)})
        except _LeaseNotFound:
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
        except _LeaseNotFound:
            return 0
        return _int((result.get('result') or result).get('TTL'))

    def time_to_live(self, lease):
        """Return ``(remaining, granted)`` seconds; remaining is -1 for an expired lease."""
        try:
            result = self._post('/lease/timetolive', {'ID': str(lease)})
        except _LeaseNotFound:
            return -1, 0
        return _int(result.get('TTL'), -1), _int(result.get('grantedTTL'))

    def _fill_ttls(self, nodes):
        cache = {}
        for node in nodes:
            if node.lease:
                if node.lease not in cache:
                    cache[node.lease] = self.time_to_live(node.lease)[0]
                node.ttl = max(cache[node.lease], 0)

    # -- reads -----------------------------------------------------------------

    def _build_dir(self, key, prefix, nodes, recursive, revision):
        root = EtcdNode(strip_dir_key(key), dir=True, revision=revision)
        dirs = {'': root}
        for node in sorted(nodes, key=lambda n: n.key):
            rel = node.key[len(prefix):]
            parts = rel.split('/')
            parent = root
            path = ''
            for part in parts[:-1]:
                path += part + '/'
                sub = dirs.get(path)
                if sub is None:
                    sub = EtcdNode(prefix + path[:-1], dir=True, revision=revision)
                    dirs[path] = sub
                    parent.children.append(sub)
                parent = sub
            parent.children.append(node)

        def summarize(dnode):
            indexes = []
            created = []
            for child in dnode.children:
                if child.dir:
                    summarize(child)
                if child.index:
                    indexes.append(child.index)
                if child.created_index:
                    created.append(child.created_index)
            dnode.index = max(indexes) if indexes else None
            dnode.created_index = min(created) if created else None

        summarize(root)
        if not recursive:
            for child in root.children:
                if child.dir:
                    child.children = []
        return root

    def get(self, key, recursive=False):
        prefix = dir_prefix(key)
        pb = prefix.encode('utf-8')
        succeeded, responses, revision = self._txn(
            [{'key': _b64(key), 'target': 'VERSION', 'result': 'GREATER', 'version': '0'}],
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
        result = self._post('/kv/range', {'key': _b64(key), 'count_only': True}, key=key)
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

    def _exact_and_children(self, responses, revision):
        kvs = self._range_kvs(responses[0]) if responses else []
        actual = self._kv_node(kvs[0], revision) if kvs else None
        children = self._range_count(responses[1]) if len(responses) > 1 else 0
        return actual, children

    def set(self, key, value, ttl=None, prev_value=None, prev_index=None, prev_exist=None, lease=None):
        """``lease``: attach the key to that existing lease instead of granting one for ``ttl``;
        EtcdLockLost when the lease has expired."""
        if lease:
            try:
                return self._set(key, value, None, prev_value, prev_index, prev_exist, lease)
            except _LeaseNotFound:
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
            put = {'key': _b64(key), 'value': _b64(value), 'prev_kv': True}
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
                    put = {'key': _b64(key), 'value': _b64(value), 'prev_kv': True}
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
        kb = _b64(op.key)
        if op.action == EtcdOp.DELETE:
            compares = [{'key': kb, 'target': 'VERSION', 'result': 'GREATER', 'version': '0'}]
            compares.extend(self._cas_compares(op.key, op.prev_value, op.prev_index))
            return compares, {'request_delete_range': {'key': kb, 'prev_kv': True}}
        compares = self._cas_compares(op.key, op.prev_value, op.prev_index, op.prev_exist)
        compares.append(self._no_children(dir_prefix(op.key)))
        put = {'key': kb, 'value': _b64(op.value), 'prev_kv': True}
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
                    [{'key': _b64(key), 'target': 'MOD', 'result': 'EQUAL',
                      'mod_revision': str(node.index)}],
                    [{'request_put': {'key': _b64(key), 'ignore_value': True, 'lease': str(lease)}}],
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
                [{'request_delete_range': {'key': _b64(key), 'prev_kv': True}},
                 {'request_delete_range': {'key': _b64(pb), 'range_end': _b64(end), 'prev_kv': True}}],
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
        compares = [{'key': _b64(key), 'target': 'VERSION', 'result': 'GREATER', 'version': '0'}]
        compares.extend(self._cas_compares(key, prev_value, prev_index))
        succeeded, responses, revision = self._txn(
            compares,
            [{'request_delete_range': {'key': _b64(key), 'prev_kv': True}}],
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

    # -- watch -----------------------------------------------------------------

    def close_watch(self):
        """End the open watch stream, if any (the server forgets its watcher)."""
        if self._watch is not None:
            self._watch[3].close()
            self._watch = None

    def _event(self, raw, revision):
        kv = raw.get('kv') or {}
        prev_kv = raw.get('prev_kv')
        prev = self._kv_node(prev_kv, revision) if prev_kv else None
        key = _unb64(kv.get('key'))
        index = _int(kv.get('mod_revision'))
        if raw.get('type') == 'DELETE':
            return EtcdEvent(ACTION_DELETE, key, None, prev, index=index, raw_action='DELETE')
        node = self._kv_node(kv, revision)
        action = ACTION_CREATE if node.version == 1 else ACTION_UPDATE
        return EtcdEvent(action, key, node, prev, index=index, raw_action='PUT')

    def watch(self, key, recursive=False, index=None, timeout=None):
        """Return the events of the next change (all events of one revision batch)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        signature = (key, bool(recursive))
        stream = None
        if self._watch is not None:
            if self._watch[:2] == signature and index is not None and self._watch[2] == index \
                    and not self._watch[3].closed:
                stream = self._watch[3]
            else:
                self.close_watch()
        prefix = dir_prefix(key)
        if stream is None:
            create = {'key': _b64(key), 'prev_kv': True}
            if recursive:
                create['range_end'] = _b64(prefix_range_end(prefix.encode('utf-8')))
            if index is not None:
                create['start_revision'] = str(index)
            status, stream = self.transport.open_stream(
                'POST', self.prefix + '/watch', {'create_request': create}, headers=self._headers(),
                timeout=self.timeout)
            if status != 200:
                data = decode_json(stream, self.endpoint, '/watch')
                try:
                    self._raise(status, data, '/watch', key)
                except _InvalidToken:
                    self._auth_done = False
                    raise EtcdAuthError('authentication token rejected while watching %s' % key, key=key)
            self._watch = (key, bool(recursive), index, stream)
        while True:
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.close_watch()
                    raise EtcdWatchTimeout('no change of %s within %s seconds' % (key, timeout),
                                           key=key, timeout=timeout)
            try:
                line = stream.readline(remaining)
            except EtcdWatchTimeout:
                self._watch = None
                raise EtcdWatchTimeout('no change of %s within %s seconds' % (key, timeout),
                                       key=key, timeout=timeout)
            except EndpointUnavailable:
                self._watch = None
                raise
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line.decode('utf-8'))
            except (ValueError, UnicodeError):
                self.close_watch()
                raise EndpointUnavailable(self.endpoint, 'watch stream sent invalid JSON', sent=True)
            if 'error' in message and 'result' not in message:
                self.close_watch()
                err = message['error']
                data = err if isinstance(err, dict) else message
                try:
                    self._raise(_int(data.get('http_code'), 500), data, '/watch', key)
                except _InvalidToken:
                    self._auth_done = False
                    raise EtcdAuthError('authentication token rejected while watching %s' % key, key=key)
            result = message.get('result') or {}
            revision = self._revision(result)
            if result.get('compact_revision') and result.get('canceled'):
                self.close_watch()
                oldest = _int(result.get('compact_revision'))
                raise EtcdWatchIndexCleared(
                    'cannot watch %s from revision %s: history before revision %s was compacted'
                    % (key, index, oldest), key=key, index=index, oldest=oldest, current=revision or None)
            if result.get('canceled'):
                self.close_watch()
                raise EtcdServerError('watch of %s canceled by the server: %s'
                                      % (key, result.get('cancel_reason') or 'no reason given'), key=key)
            events = []
            for raw in result.get('events') or []:
                event = self._event(raw, revision)
                if event.key == key or (recursive and event.key.startswith(prefix)):
                    events.append(event)
            if events:
                self._watch = (key, bool(recursive), events[-1].index + 1, stream)
                return events

    # -- cluster ---------------------------------------------------------------

    def members(self):
        result = self._post('/cluster/member/list', {})
        members = []
        for member in result.get('members') or []:
            members.append({
                'id': _hex_id(member.get('ID')),
                'name': member.get('name') or '',
                'peer_urls': list(member.get('peerURLs') or []),
                'client_urls': list(member.get('clientURLs') or []),
                'is_learner': bool(member.get('isLearner')),
            })
        header = result.get('header') or {}
        return _hex_id(header.get('cluster_id')), members

    def status(self):
        result = self._post('/maintenance/status', {})
        header = result.get('header') or {}
        return {
            'member_id': _hex_id(header.get('member_id')),
            'leader': _hex_id(result.get('leader')),
            'version': result.get('version'),
            'db_size': _int(result.get('dbSize')),
            'raft_index': _int(result.get('raftIndex')),
            'raft_term': _int(result.get('raftTerm')),
            'errors': list(result.get('errors') or []),
        }

    def health(self):
        return self.transport.member_health(headers=self._headers())

    def version(self):
        return self.transport.member_version()
