# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""etcd v2 backend on python-etcd (``/v2/keys``), for one endpoint.

Cluster endpoints (``/v2/members``, ``/v2/stats/self``, ``/health``,
``/version``) go through the standard library transport shared with v3.
"""

from __future__ import annotations

import re
import ssl
import traceback
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (
    ACTION_CREATE,
    ACTION_DELETE,
    ACTION_EXPIRE,
    ACTION_UPDATE,
    EtcdAuthError,
    EtcdCompareFailed,
    EtcdDirNotEmpty,
    EtcdEvent,
    EtcdKeyExists,
    EtcdKeyNotFound,
    EtcdMissingLibrary,
    EtcdNode,
    EtcdNotADir,
    EtcdNotAFile,
    EtcdServerError,
    EtcdUnsupported,
    EtcdUsageError,
    EtcdWatchIndexCleared,
    EtcdWatchTimeout,
    split_endpoint,
    summarize_text,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_auth import V2Access
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_backend import EtcdBackend
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_http import (
    HTTPS_HINT,
    EndpointUnavailable,
    HttpTransport,
    connect_timeout,
    describe_tls_error,
    no_tls_reason,
    socket_options,
    speaks_plain_http,
    speaks_tls,
)

try:
    import etcd as pyetcd
    import urllib3
    from urllib3 import exceptions as urllib3_exceptions
    HAS_PYTHON_ETCD = True
    PYTHON_ETCD_IMPORT_ERROR = None
    PYTHON_ETCD_TRACEBACK = None
except ImportError as _import_error:  # pragma: no cover - depends on the host
    HAS_PYTHON_ETCD = False
    PYTHON_ETCD_IMPORT_ERROR = _import_error
    PYTHON_ETCD_TRACEBACK = traceback.format_exc()

_ACTIONS = {
    'create': ACTION_CREATE,
    'update': ACTION_UPDATE,
    'compareAndSwap': ACTION_UPDATE,
    'delete': ACTION_DELETE,
    'compareAndDelete': ACTION_DELETE,
    'expire': ACTION_EXPIRE,
}
_CLEARED_RE = re.compile(r'\[(\d+)/(\d+)\]')
# connections per endpoint; also how many requests of a batch (writes, reads) are in flight at
# once.  Each v2 write waits for its own raft commit, and etcd commits the proposals in flight
# together, so a batch goes faster the more of it is in flight.  With 8, the fleet engine needed
# 2-3 s to place 200 units on the 3-node lab, and bench/fleet_throughput.py took 6-7 s; with 64,
# 3.1-3.9 s.
REQUEST_CONCURRENCY = 64


def require_python_etcd():
    if not HAS_PYTHON_ETCD:
        raise EtcdMissingLibrary('python-etcd', PYTHON_ETCD_IMPORT_ERROR, reason='for the etcd v2 API')


def key_path(key):
    """``key`` as the path after ``/v2/keys``: every segment percent-encoded, ``/`` kept as the
    separator, so that ``#``, ``?`` and ``%`` are part of the key and never a URL component.
    Keys in etcd's answers come back decoded and are used as they are."""
    return '/'.join(quote(segment, safe='') for segment in key.split('/'))


def raw_to_node(raw, revision=None):
    """Convert one v2 JSON node (as in ``node``/``nodes``) to an EtcdNode."""
    children = [raw_to_node(child, revision) for child in raw.get('nodes') or []]
    return EtcdNode(
        key=raw.get('key') or '/',
        value=raw.get('value') if not raw.get('dir') else None,
        dir=bool(raw.get('dir')),
        index=raw.get('modifiedIndex'),
        created_index=raw.get('createdIndex'),
        ttl=raw.get('ttl'),
        expiration=raw.get('expiration'),
        children=children,
        revision=revision,
    )


def result_to_node(result):
    """Convert a python-etcd EtcdResult to an EtcdNode (with its children)."""
    revision = getattr(result, 'etcd_index', None)
    raw = {
        'key': result.key,
        'value': result.value,
        'dir': result.dir,
        'modifiedIndex': result.modifiedIndex,
        'createdIndex': result.createdIndex,
        'ttl': result.ttl,
        'expiration': result.expiration,
        'nodes': getattr(result, '_children', None) or [],
    }
    return raw_to_node(raw, revision)


def result_to_event(result, key=None):
    """Convert a write or watch EtcdResult to an EtcdEvent."""
    prev = getattr(result, '_prev_node', None)
    prev_node = result_to_node(prev) if prev is not None else None
    action = _ACTIONS.get(result.action)
    if action is None:  # set
        action = ACTION_UPDATE if prev_node is not None else ACTION_CREATE
    if action in (ACTION_DELETE, ACTION_EXPIRE):
        node = None
    else:
        node = result_to_node(result)
        if node.revision is None or (node.index and node.revision < node.index):
            node.revision = node.index
    return EtcdEvent(action, result.key or key, node, prev_node, index=result.modifiedIndex,
                     raw_action=result.action)


class V2Backend(EtcdBackend):
    """Key operations for one endpoint through python-etcd.

    Directories are real; a TTL belongs to each key (no etcd v3 leases).
    """

    api_version = 'v2'
    supports_directories = True
    supports_leases = False

    @classmethod
    def check_available(cls):
        require_python_etcd()

    @classmethod
    def connect(cls, endpoint, timeout, ssl_context=None, username=None, password=None,
                ca_cert=None, client_cert=None, client_key=None):
        return cls(endpoint, timeout, ssl_context=ssl_context, username=username, password=password,
                   ca_cert=ca_cert, client_cert=client_cert, client_key=client_key)

    def __init__(self, endpoint, timeout, ssl_context=None, username=None, password=None,
                 ca_cert=None, client_cert=None, client_key=None, client=None):
        self.endpoint = endpoint
        self.timeout = timeout
        self._username = username
        self._has_client_cert = bool(client_cert)
        self.transport = HttpTransport(endpoint, timeout, ssl_context=ssl_context,
                                       username=username, password=password,
                                       has_client_cert=bool(client_cert))
        if client is not None:
            self.client = client
            return
        require_python_etcd()
        scheme, host, port = split_endpoint(endpoint)
        cert = None
        if client_cert:
            cert = (client_cert, client_key) if client_key else client_cert
        self.client = pyetcd.Client(host=host, port=port, protocol=scheme, read_timeout=timeout,
                                    allow_reconnect=False, cert=cert, ca_cert=ca_cert,
                                    username=username, password=password)
        # requests without a timeout of their own: a short connect (see CONNECT_TIMEOUT), then
        # the whole timeout for the answer
        request_timeout = urllib3.Timeout(connect=connect_timeout(timeout), read=timeout)
        self.client._read_timeout = request_timeout  # pylint: disable=protected-access
        # our own pool: no urllib3 retries, so a failed write is never sent twice
        # and the endpoint failover of the client layer decides what to do
        pool_args = {'maxsize': REQUEST_CONCURRENCY, 'timeout': request_timeout, 'retries': False,
                     'socket_options': socket_options()}
        if client_cert:
            pool_args['cert_file'] = client_cert
            if client_key:
                pool_args['key_file'] = client_key
        if ca_cert:
            pool_args['ca_certs'] = ca_cert
            pool_args['cert_reqs'] = ssl.CERT_REQUIRED
        self.client.http = urllib3.PoolManager(num_pools=4, **pool_args)

    def close_watch(self):
        """Nothing to do: a v2 watch is one request and holds nothing open between calls."""

    def close(self):
        self.transport.close()
        http = getattr(self.client, 'http', None)
        if http is not None and hasattr(http, 'clear'):
            http.clear()

    # -- error mapping ------------------------------------------------------------

    def _connection_failure(self, exc):
        cause = getattr(exc, 'cause', None) or exc
        while isinstance(cause, urllib3_exceptions.MaxRetryError) and cause.reason is not None:
            cause = cause.reason
        if isinstance(cause, urllib3_exceptions.SSLError) or isinstance(cause, ssl.SSLError):
            inner = cause.args[0] if cause.args and isinstance(cause.args[0], ssl.SSLError) else cause
            scheme, host, port = split_endpoint(self.endpoint)
            return EndpointUnavailable(self.endpoint,
                                       describe_tls_error(inner, self._has_client_cert, (host, port)),
                                       tls=True)
        if isinstance(cause, (urllib3_exceptions.NewConnectionError,
                              urllib3_exceptions.ConnectTimeoutError)):
            text = str(cause)
            if 'refused' in text.lower():
                reason = 'connection refused'
            elif 'resolution' in text.lower() or 'name or service' in text.lower():
                reason = 'cannot resolve host name'
            elif isinstance(cause, urllib3_exceptions.ConnectTimeoutError):
                reason = 'connection timed out after %s seconds' % connect_timeout(self.timeout)
            else:
                reason = text
            return EndpointUnavailable(self.endpoint, reason)
        if isinstance(cause, urllib3_exceptions.ReadTimeoutError):
            return EndpointUnavailable(self.endpoint, 'no answer within %s seconds' % self.timeout,
                                       sent=True)
        text = str(cause)
        reason = text
        if 'RemoteDisconnected' in text or 'Connection aborted' in text or 'reset' in text.lower():
            scheme, host, port = split_endpoint(self.endpoint)
            if scheme == 'http' and speaks_tls(host, port, min(self.timeout, 2.0)):
                return EndpointUnavailable(self.endpoint, HTTPS_HINT, tls=True)
            reason = 'connection closed by the server (%s)' % text
            if scheme == 'https' and speaks_plain_http(host, port, min(self.timeout, 2.0)):
                return EndpointUnavailable(self.endpoint, no_tls_reason(text), tls=True)
            if scheme == 'https':
                return EndpointUnavailable(self.endpoint, describe_tls_error(
                    ssl.SSLEOFError('connection closed after the TLS handshake: %s' % text),
                    self._has_client_cert, after_handshake=True), tls=True, sent=True)
        return EndpointUnavailable(self.endpoint, reason, sent=True)

    def _convert(self, exc, key=None):
        """Map a python-etcd exception to the common hierarchy."""
        payload = getattr(exc, 'payload', None) or {}
        if isinstance(exc, pyetcd.EtcdWatchTimedOut):
            return EtcdWatchTimeout('no change of %s within the timeout' % key, key=key)
        if isinstance(exc, pyetcd.EtcdConnectionFailed):
            return self._connection_failure(exc)
        if isinstance(exc, pyetcd.EtcdKeyNotFound):
            return EtcdKeyNotFound('key not found: %s' % key, key=key, revision=payload.get('index'))
        if isinstance(exc, pyetcd.EtcdNotFile):
            return EtcdNotAFile('%s is a directory, it cannot hold a value' % key, key=key)
        if isinstance(exc, pyetcd.EtcdNotDir):
            return EtcdNotADir('a parent of %s holds a value, it is not a directory (%s)'
                               % (key, payload.get('cause') or ''), key=key)
        if isinstance(exc, pyetcd.EtcdAlreadyExist):
            return EtcdKeyExists('%s already exists' % key, key=key)
        if isinstance(exc, pyetcd.EtcdDirNotEmpty):
            return EtcdDirNotEmpty('directory %s is not empty; use recursive' % key, key=key)
        if isinstance(exc, pyetcd.EtcdInsufficientPermissions):
            if self._username:
                return EtcdAuthError('access to %s denied for user %r: wrong user name or password, '
                                     'or missing permission' % (key or self.endpoint, self._username),
                                     key=key)
            return EtcdAuthError('access to %s denied: the cluster requires authentication '
                                 '(set username and password)' % (key or self.endpoint), key=key)
        if isinstance(exc, pyetcd.EtcdEventIndexCleared):
            match = _CLEARED_RE.search(str(payload.get('cause') or exc))
            oldest = int(match.group(1)) if match else None
            requested = int(match.group(2)) if match else None
            return EtcdWatchIndexCleared(
                'cannot watch %s from index %s: the oldest index still kept is %s'
                % (key, requested, oldest), key=key, index=requested, oldest=oldest,
                current=payload.get('index'))
        if isinstance(exc, pyetcd.EtcdRootReadOnly):
            return EtcdUsageError('the root directory is read only', key=key)
        if isinstance(exc, pyetcd.EtcdCompareFailed):
            return exc  # handled by the caller, which knows the conditions
        if isinstance(exc, pyetcd.EtcdValueError):
            return EtcdUsageError('etcd refused the request for %s: %s' % (key, exc), key=key)
        text = str(exc)
        if 'HTTP request to an HTTPS server' in text:
            return EndpointUnavailable(self.endpoint, HTTPS_HINT, tls=True)
        if text.startswith('Bad response'):
            # python-etcd's word for a body that is not JSON: not an etcd v2 answer
            cause = payload.get('cause') if isinstance(payload, dict) else None
            return EndpointUnavailable(self.endpoint, 'no etcd v2 API at /v2/keys (%s); etcd 3.4/3.5 serve it '
                                       'only with --enable-v2=true, or use api_version=v3'
                                       % summarize_text(cause or text))
        return EtcdServerError('etcd v2 request for %s failed: %s' % (key, text), key=key)

    def _call(self, key, func, *args, **kwargs):
        if args and args[0] == key:
            args = (key_path(key),) + args[1:]
        try:
            return func(*args, **kwargs)
        except pyetcd.EtcdException as exc:
            converted = self._convert(exc, key)
            if converted is exc:
                raise
            raise converted

    def _actual(self, key):
        try:
            return result_to_node(self._call(key, self.client.read, key, quorum=True))
        except EtcdKeyNotFound:
            return None

    def _compare_failed(self, key, expected):
        actual = self._actual(key)
        if actual is None:
            return EtcdCompareFailed(key, expected, {'exists': False})
        if actual.dir:
            return EtcdCompareFailed(key, expected, {'exists': True, 'dir': True, 'index': actual.index})
        return EtcdCompareFailed(key, expected, {'exists': True, 'value': actual.value, 'index': actual.index})

    @staticmethod
    def _cas_args(prev_value=None, prev_index=None, prev_exist=None):
        args = {}
        expected = {}
        if prev_exist is not None:
            args['prevExist'] = bool(prev_exist)
            expected['exists'] = bool(prev_exist)
        if prev_value is not None:
            args['prevValue'] = prev_value
            expected['value'] = prev_value
        if prev_index is not None:
            args['prevIndex'] = prev_index
            expected['index'] = prev_index
        return args, expected

    def _cas_call(self, key, expected, func, *args, **kwargs):
        try:
            return self._call(key, func, *args, **kwargs)
        except pyetcd.EtcdCompareFailed:
            raise self._compare_failed(key, expected)
        except (EtcdKeyNotFound, EtcdKeyExists):
            if expected:
                raise self._compare_failed(key, expected)
            raise
        except EtcdNotAFile:
            if expected and ('value' in expected or 'index' in expected):
                raise self._compare_failed(key, expected)
            raise

    # -- operations -----------------------------------------------------------------

    def get(self, key, recursive=False):
        # through the leader (``quorum``), as v3 reads are: a member that was away serves an old
        # state until it has caught up
        result = self._call(key, self.client.read, key, recursive=bool(recursive), quorum=True)
        return result_to_node(result)

    def revision(self, key):
        try:
            return self._call(key, self.client.read, key, quorum=True).etcd_index
        except EtcdKeyNotFound as exc:
            if exc.revision is None:
                raise
            return exc.revision

    def get_many(self, keys):
        """v2 has no multi-key read: the reads go out over several connections at once."""
        keys = list(keys)
        if len(keys) < 2:
            return dict((key, self._get_or_none(key)) for key in keys)
        with ThreadPoolExecutor(max_workers=min(REQUEST_CONCURRENCY, len(keys))) as pool:
            return dict(zip(keys, pool.map(self._get_or_none, keys)))

    def _get_or_none(self, key):
        """The node at ``key`` (a directory without its children), or None."""
        try:
            node = self.get(key)
        except EtcdKeyNotFound:
            return None
        if node.dir:
            node.children = []
        return node

    def set(self, key, value, ttl=None, prev_value=None, prev_index=None, prev_exist=None, lease=None):
        if lease:
            self._no_leases()
        args, expected = self._cas_args(prev_value, prev_index, prev_exist)
        result = self._cas_call(key, expected, self.client.write, key, value, ttl=ttl, **args)
        return result_to_event(result, key)

    def set_many(self, items, ttl=None):
        return [self.set(key, value, ttl=ttl) for key, value in items.items()]

    def write_each(self, ops):
        """v2 has no multi-key request: the ops go out over several connections at once."""
        if len(ops) == 1:
            return [ops[0].apply_alone(self)]
        with ThreadPoolExecutor(max_workers=min(REQUEST_CONCURRENCY, len(ops))) as pool:
            futures = [pool.submit(op.apply_alone, self) for op in ops]
            results = []
            failures = []
            for future in futures:
                try:
                    results.append(future.result())
                except Exception as exc:  # pylint: disable=broad-except
                    failures.append(exc)
        if failures:
            failure = failures[0]
            if isinstance(failure, EndpointUnavailable) and (results or len(failures) > 1):
                # other ops went through or may have: the batch is not to be sent elsewhere
                failure.sent = failure.sent or bool(results) or any(
                    getattr(exc, 'sent', True) for exc in failures[1:])
            raise failure
        return results

    def refresh(self, key, ttl, prev_value=None, prev_index=None):
        args, expected = self._cas_args(prev_value, prev_index)
        try:
            result = self._cas_call(key, expected, self.client.refresh, key, ttl, **args)
        except EtcdKeyNotFound as exc:
            raise EtcdKeyNotFound('cannot refresh %s: key not found' % key, key=key,
                                  revision=exc.revision)
        node = result_to_node(result)
        return node

    def mkdir(self, key, ttl=None):
        result = self._call(key, self.client.write, key, None, ttl=ttl, dir=True, prevExist=False)
        return result_to_event(result, key)

    def delete(self, key, recursive=False, dir=False, prev_value=None, prev_index=None):
        args, expected = self._cas_args(prev_value, prev_index)
        if recursive and not expected:
            node = None
            try:
                node = self.get(key, recursive=True)
            except EtcdKeyNotFound:
                pass
            result = self._call(key, self.client.delete, key, recursive=True)
            event = result_to_event(result, key)
            if node is not None and event.prev_node is not None and node.dir:
                event.prev_node.children = node.children
            return event
        kwargs = dict(args)
        if dir and not expected:
            kwargs['dir'] = True
        result = self._cas_call(key, expected, self.client.delete, key, **kwargs)
        return result_to_event(result, key)

    def watch(self, key, recursive=False, index=None, timeout=None):
        # the answer may take ``timeout`` (None: for ever); connecting may not
        kwargs = {'recursive': bool(recursive), 'wait': True,
                  'timeout': urllib3.Timeout(connect=connect_timeout(self.timeout), read=timeout or None)}
        if index:
            kwargs['waitIndex'] = index
        try:
            result = self._call(key, self.client.read, key, **kwargs)
        except EtcdWatchTimeout:
            raise EtcdWatchTimeout('no change of %s within %s seconds' % (key, timeout), key=key,
                                   timeout=timeout)
        event = result_to_event(result, key)
        event.revision = getattr(result, 'etcd_index', None)
        return [event]

    # -- etcd v3 leases: none here ------------------------------------------------------

    def _no_leases(self):
        raise EtcdUnsupported('etcd leases need api_version=v3; with v2 a TTL belongs to each key')

    def grant(self, ttl):
        self._no_leases()

    def keepalive(self, lease):
        self._no_leases()

    def revoke(self, lease):
        self._no_leases()

    def lease_keys(self, lease):
        self._no_leases()

    # -- cluster ---------------------------------------------------------------

    def _get_json(self, path):
        status, data = self.transport.request_json('GET', path)
        if status == 401:
            raise EtcdAuthError('access to %s%s denied: check username and password' % (self.endpoint, path))
        if status != 200:
            raise EtcdServerError('GET %s%s answered HTTP %s' % (self.endpoint, path, status))
        return data or {}

    def members(self):
        data = self._get_json('/v2/members')
        cluster_id = self.transport.last_headers.get('x-etcd-cluster-id')
        members = []
        for member in data.get('members') or []:
            members.append({
                'id': member.get('id'),
                'name': member.get('name') or '',
                'peer_urls': list(member.get('peerURLs') or []),
                'client_urls': list(member.get('clientURLs') or []),
                'is_learner': bool(member.get('isLearner')),
            })
        return cluster_id, members

    def status(self):
        stats = self._get_json('/v2/stats/self')
        server, dummy = self.version()
        leader_info = stats.get('leaderInfo') or {}
        return {
            'member_id': stats.get('id'),
            'leader': leader_info.get('leader') or None,
            'version': server,
            'db_size': None,
            'raft_index': None,
            'raft_term': None,
            'errors': [],
        }

    def health(self):
        return self.transport.member_health()

    def access(self):
        return V2Access(self.transport)

    def version(self):
        return self.transport.member_version()
