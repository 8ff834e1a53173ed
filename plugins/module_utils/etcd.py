# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The etcd client layer of etcdfleet.cluster.

Every module, the ``etcd`` lookup and the node daemons talk to etcd through
``EtcdClient``. It speaks the v2 API (through python-etcd) or the v3 API
(through etcd's JSON gateway, standard library only) with the same
caller-visible behaviour:

``get``/``get_many``      read a key, or a directory/prefix (``recursive``)
``set``/``set_many``      write with optional TTL and compare-and-swap
``write_each``            many independent (conditional) writes and deletes at once
``refresh``               renew a TTL without changing the value
``mkdir``                 make a directory (v2; nothing to make on v3)
``delete``/``delete_many`` remove keys or whole directories
``watch``/``watch_events`` wait for the next change of a key or prefix
``watch_iter``            follow changes for ever (daemons)
``cluster_info``          members, leader, health and versions
``lock``                  a TTL-bound lock for leader election
``key_keeper`` (``lease``) keys kept alive together, renewed without waking watchers
``grant_lease`` ...       etcd v3 leases themselves (when ``supports_leases``)

The API-specific work is done by a backend per endpoint (``_etcd_v2``,
``_etcd_v3``) behind the ``EtcdBackend`` interface of ``_etcd_backend``; where
the APIs differ the client reports it as ``supports_directories`` and
``supports_leases`` instead of callers asking for the API version.

Errors are raised as subclasses of ``EtcdError`` (see below); nothing here
prints, exits or depends on AnsibleModule.

Endpoints are tried in order; a request moves on to the next endpoint when
the current one cannot be reached (or, for reads and watches, fails on the
wire). When none answers, ``EtcdConnectionError`` (``EtcdTLSError`` when
every failure was a TLS problem) names every endpoint tried and why it failed.

Following changes from a daemon::

    client = EtcdClient(endpoints=['http://10.0.0.1:2379'], api_version='v3')
    for event in client.watch_iter('/services', recursive=True, idle_timeout=30):
        if event is None:          # idle_timeout passed without a change
            continue
        if event.action == 'resync':
            rebuild_from(event.node)   # history was lost: a full fresh read
        else:
            apply(event)

``watch_iter`` resumes from the index after the last event it yielded. When
that index is no longer available (v2 keeps only the last 1000 events, v3
compacts) the server answers "index cleared"; ``watch_iter`` then reads the
key/prefix again and yields one ``resync`` event carrying the fresh tree,
then continues from the read's revision + 1. With ``resync=False`` it raises
``EtcdWatchIndexCleared`` instead and the caller does the same by hand::

    try:
        event = client.watch(key, recursive=True, index=next_index, timeout=60)
    except EtcdWatchIndexCleared:
        node = client.get(key, recursive=True)   # or EtcdKeyNotFound.revision
        next_index = node.revision + 1
"""

from __future__ import annotations

import os

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_auth import (  # noqa: F401 pylint: disable=unused-import
    AccessState,
    StateAccess,
    apply_access,
    plan_access,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (  # noqa: F401 pylint: disable=unused-import
    ACTION_CREATE,
    ACTION_DELETE,
    ACTION_EXPIRE,
    ACTION_RESYNC,
    ACTION_UPDATE,
    API_VERSIONS,
    DEFAULT_ENDPOINT,
    ENDPOINTS_ENV,
    EtcdAuthError,
    EtcdCompareFailed,
    EtcdConnectionError,
    EtcdDirNotEmpty,
    EtcdError,
    EtcdEvent,
    EtcdKeyError,
    EtcdKeyExists,
    EtcdKeyNotFound,
    EtcdLockLost,
    EtcdMissingLibrary,
    EtcdNode,
    EtcdNotADir,
    EtcdNotAFile,
    EtcdOp,
    EtcdServerError,
    EtcdTLSError,
    EtcdUnsupported,
    EtcdUsageError,
    EtcdWatchIndexCleared,
    EtcdWatchTimeout,
    actual_of,
    conditions_hold,
    describe_condition,
    expected_of,
    parse_endpoints,
    to_text_value,
    validate_index,
    validate_key,
    validate_ttl,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_cluster import ask_members
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_endpoint_health import EndpointHealth
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_http import (
    EndpointUnavailable,
    make_ssl_context,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_key_keeper import EtcdKeyKeeper
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_lock import EtcdLock
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_v2 import (
    HAS_PYTHON_ETCD,
    PYTHON_ETCD_IMPORT_ERROR,
    PYTHON_ETCD_TRACEBACK,
    V2Backend,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_v3 import V3Backend
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_watch_iter import follow_changes

__all__ = [
    'EtcdClient', 'EndpointHealth', 'EtcdLock', 'EtcdKeyKeeper', 'EtcdNode', 'EtcdEvent', 'EtcdOp', 'EtcdError', 'EtcdUsageError',
    'EtcdUnsupported', 'EtcdMissingLibrary', 'EtcdConnectionError', 'EtcdTLSError',
    'EtcdAuthError', 'EtcdServerError', 'EtcdKeyError', 'EtcdKeyNotFound', 'EtcdKeyExists',
    'EtcdNotAFile', 'EtcdNotADir', 'EtcdDirNotEmpty', 'EtcdCompareFailed', 'EtcdWatchTimeout',
    'EtcdWatchIndexCleared', 'EtcdLockLost', 'HAS_PYTHON_ETCD', 'PYTHON_ETCD_IMPORT_ERROR',
    'PYTHON_ETCD_TRACEBACK', 'CONNECTION_ARGUMENT_SPEC', 'client_from_params',
]

DEFAULT_TIMEOUT = 5.0

# the backend class speaking each etcd API (see _etcd_backend.EtcdBackend)
BACKENDS = {'v2': V2Backend, 'v3': V3Backend}

# The connection options shared by every module (documented once in
# plugins/doc_fragments/etcd.py). Plain data: usable without Ansible.
CONNECTION_ARGUMENT_SPEC = dict(
    endpoints=dict(type='list', elements='str'),
    api_version=dict(type='str', default='v2', choices=list(API_VERSIONS)),
    ca_cert=dict(type='path'),
    client_cert=dict(type='path'),
    client_key=dict(type='path', no_log=False),
    username=dict(type='str'),
    password=dict(type='str', no_log=True),
    timeout=dict(type='float', default=DEFAULT_TIMEOUT),
)
CONNECTION_OPTIONS = tuple(CONNECTION_ARGUMENT_SPEC)


def client_from_params(params, **overrides):
    """Build an EtcdClient from a dict holding the connection options."""
    kwargs = dict((name, params.get(name)) for name in CONNECTION_OPTIONS if params.get(name) is not None)
    kwargs.update(overrides)
    return EtcdClient(**kwargs)


class EtcdClient(object):
    """One etcd cluster, reached through an ordered list of endpoints.

    ``health`` (an EndpointHealth) shares the endpoints found unreachable with
    other clients of the process; without it the client keeps its own.
    """

    def __init__(self, endpoints=None, api_version='v2', ca_cert=None, client_cert=None,
                 client_key=None, username=None, password=None, timeout=DEFAULT_TIMEOUT,
                 environ=None, backend_factory=None, health=None):
        if api_version not in API_VERSIONS:
            raise EtcdUsageError('api_version must be one of %s, got %r' % (', '.join(API_VERSIONS), api_version))
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise EtcdUsageError('timeout must be a positive number of seconds, got %r' % (timeout,))
        if not timeout > 0:
            raise EtcdUsageError('timeout must be a positive number of seconds, got %r' % (timeout,))
        if password is not None and username is None:
            raise EtcdUsageError('password is set but username is not')
        if username is not None and password is None:
            raise EtcdUsageError('username is set but password is not')
        if client_key and not client_cert:
            raise EtcdUsageError('client_key is set but client_cert is not')
        for name, path in (('ca_cert', ca_cert), ('client_cert', client_cert), ('client_key', client_key)):
            if path and not os.path.isfile(path):
                raise EtcdTLSError('%s file %s does not exist' % (name, path))
            if path and not os.access(path, os.R_OK):
                raise EtcdTLSError('%s file %s is not readable' % (name, path))
        self.api_version = api_version
        self._backend_class = BACKENDS[api_version]
        self.timeout = timeout
        self.endpoints = parse_endpoints(endpoints, tls=bool(ca_cert or client_cert), environ=environ)
        self._ca_cert = ca_cert
        self._client_cert = client_cert
        self._client_key = client_key
        self._username = username
        self._password = password
        self._ssl_context = None
        self._backend_factory = backend_factory
        self._backends = {}
        self._preferred = 0
        self._watching = None
        self._health = health if health is not None else EndpointHealth()
        if backend_factory is None:
            self._backend_class.check_available()
            if any(url.startswith('https:') for url in self.endpoints):
                self._ssl_context = make_ssl_context(ca_cert, client_cert, client_key)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        for backend in self._backends.values():
            try:
                backend.close()
            except Exception:  # pylint: disable=broad-except
                pass
        self._backends = {}

    @property
    def endpoint(self):
        """The endpoint that answered last (the first one before any request)."""
        return self.endpoints[self._preferred]

    @property
    def supports_directories(self):
        """True when the API has real directories (v2); without them (v3) a directory is the
        keys below a prefix, ``mkdir`` writes nothing and directories have no TTL."""
        return self._backend_class.supports_directories

    @property
    def supports_leases(self):
        """True when the API has etcd v3 leases (``grant_lease`` and the other lease methods)."""
        return self._backend_class.supports_leases

    # -- backends and failover ---------------------------------------------------

    def _new_backend(self, endpoint):
        if self._backend_factory is not None:
            return self._backend_factory(endpoint)
        context = None
        if endpoint.startswith('https:'):
            if self._ssl_context is None:
                self._ssl_context = make_ssl_context(self._ca_cert, self._client_cert, self._client_key)
            context = self._ssl_context
        return self._backend_class.connect(endpoint, self.timeout, ssl_context=context,
                                           username=self._username, password=self._password,
                                           ca_cert=self._ca_cert, client_cert=self._client_cert,
                                           client_key=self._client_key)

    def _backend(self, endpoint):
        backend = self._backends.get(endpoint)
        if backend is None:
            backend = self._new_backend(endpoint)
            self._backends[endpoint] = backend
        return backend

    def _moved_watch(self, endpoint):
        """A watch goes to ``endpoint``: a stream still open on another member (left while
        that member was marked down, though it still answers) is closed."""
        previous, self._watching = self._watching, endpoint
        if previous is not None and previous != endpoint and previous in self._backends:
            self._backends[previous].close_watch()

    def _run(self, request, key=None, retry_sent=False, watch=False):
        """Return ``request(backend)`` from the first endpoint that answers.

        ``retry_sent`` allows moving on to the next endpoint even when the
        request may have reached the failing one (reads and watches only).
        ``watch`` marks a watch (a stream left open elsewhere is closed);
        ``key`` is named in the error of a request that may have been applied.
        """
        failures = []
        count = len(self.endpoints)
        positions = [(self._preferred + offset) % count for offset in range(count)]
        order = self._health.order([self.endpoints[p] for p in positions])
        positions = [self.endpoints.index(endpoint) for endpoint in order]
        for position in positions:
            endpoint = self.endpoints[position]
            try:
                backend = self._backend(endpoint)
                if watch:
                    self._moved_watch(endpoint)
                result = request(backend)
            except EndpointUnavailable as exc:
                failures.append((endpoint, exc.reason, exc.tls))
                self._health.down(endpoint)
                backend = self._backends.pop(endpoint, None)
                if backend is not None:
                    try:
                        backend.close()
                    except Exception:  # pylint: disable=broad-except
                        pass
                if exc.sent and not retry_sent:
                    raise EtcdConnectionError(
                        'request to etcd at %s failed and may or may not have been applied: %s'
                        % (endpoint, exc.reason), failures=[(endpoint, exc.reason)],
                        key=key)
                continue
            self._preferred = position
            self._health.up(endpoint)
            return result
        details = '; '.join('%s (%s)' % (endpoint, reason) for endpoint, reason, dummy in failures)
        pairs = [(endpoint, reason) for endpoint, reason, dummy in failures]
        if failures and all(tls for dummy, dummy2, tls in failures):
            raise EtcdTLSError('cannot connect to etcd over TLS, tried %d endpoint(s): %s'
                               % (len(failures), details), failures=pairs)
        raise EtcdConnectionError('cannot reach etcd, tried %d endpoint(s): %s' % (len(failures), details),
                                  failures=pairs)

    # -- reads -------------------------------------------------------------------

    def get(self, key, recursive=False):
        """Return the EtcdNode of ``key``; a directory with its children
        (one level, or all levels with ``recursive``). Raises EtcdKeyNotFound."""
        validate_key(key)
        recursive = bool(recursive)
        return self._run(lambda backend: backend.get(key, recursive=recursive), retry_sent=True)

    def get_many(self, keys):
        """Return ``{key: EtcdNode or None}``; directories come without children."""
        keys = list(keys)
        for key in keys:
            validate_key(key)
        if not keys:
            return {}
        return self._run(lambda backend: backend.get_many(keys), retry_sent=True)

    def revision(self, key='/'):
        """The current store index (v2) or revision (v3), read through ``key``."""
        validate_key(key)
        return self._run(lambda backend: backend.revision(key), retry_sent=True)

    # -- writes ------------------------------------------------------------------

    def set(self, key, value, ttl=None, prev_value=None, prev_index=None, prev_exist=None):
        """Write ``value`` to ``key``; return an EtcdEvent (``node`` new, ``prev_node`` old).

        ``ttl`` makes the key expire (v3: a lease for this write). The write
        only happens when every given condition holds: ``prev_value`` equals
        the current value, ``prev_index`` the current index, ``prev_exist``
        whether the key exists. Otherwise EtcdCompareFailed (with
        ``expected`` and ``actual``) is raised. Writing to a directory raises
        EtcdNotAFile.
        """
        validate_key(key)
        value = to_text_value(value)
        ttl = validate_ttl(ttl)
        prev_index = validate_index(prev_index)
        if prev_value is not None:
            prev_value = to_text_value(prev_value, 'prev_value')
        if prev_exist is not None and not isinstance(prev_exist, bool):
            raise EtcdUsageError('prev_exist must be true or false, got %r' % (prev_exist,))
        return self._run(lambda backend: backend.set(key, value, ttl=ttl, prev_value=prev_value,
                                                     prev_index=prev_index, prev_exist=prev_exist),
                         key=key)

    def set_many(self, items, ttl=None):
        """Write ``{key: value}``; return the list of EtcdEvents in order.

        No compare conditions; on v3 the writes go in transactions of up to
        64 keys and keys written with a TTL share one lease.
        """
        ttl = validate_ttl(ttl)
        clean = {}
        for key, value in items.items():
            validate_key(key)
            clean[key] = to_text_value(value, 'value of %s' % key)
        if not clean:
            return []
        return self._run(lambda backend: backend.set_many(clean, ttl=ttl))

    def write_each(self, ops):
        """Apply many independent writes (``EtcdOp.set`` / ``EtcdOp.delete``) in few round trips.

        Each op succeeds or fails on its own, as if made alone with ``set`` or
        ``delete`` (the batch is not atomic). Returns one result per op, in
        order: the EtcdEvent of an applied op, or the EtcdKeyError it met
        (EtcdCompareFailed, EtcdKeyNotFound, EtcdNotAFile) -- returned, not
        raised. v3 sends the ops in transactions of up to 64; v2, which has no
        multi-key request, sends them over several connections at once. Keys
        written with the same TTL in one call share a v3 lease. Connection and
        server errors are raised (some ops may have been applied).
        """
        ops = list(ops)
        for op in ops:
            if not isinstance(op, EtcdOp):
                raise EtcdUsageError('write_each takes EtcdOp items, got %r' % (op,))
            validate_key(op.key)
            if op.action == EtcdOp.SET:
                op.value = to_text_value(op.value, 'value of %s' % op.key)
                op.ttl = validate_ttl(op.ttl)
            elif op.action != EtcdOp.DELETE:
                raise EtcdUsageError('unknown EtcdOp action %r' % (op.action,))
            op.prev_index = validate_index(op.prev_index)
            if op.prev_value is not None:
                op.prev_value = to_text_value(op.prev_value, 'prev_value')
            if op.prev_exist is not None and not isinstance(op.prev_exist, bool):
                raise EtcdUsageError('prev_exist must be true or false, got %r' % (op.prev_exist,))
        if not ops:
            return []
        return self._run(lambda backend: backend.write_each(ops))

    def refresh(self, key, ttl, prev_value=None, prev_index=None):
        """Renew the TTL of an existing key without changing its value.

        v2 uses ``refresh=true`` (watchers are not woken). v3 keeps the key's
        lease alive when it was granted with the same TTL; otherwise the key
        is moved to a new lease of ``ttl`` seconds (watchers see a write with
        the unchanged value). Raises EtcdKeyNotFound when the key is gone.
        """
        validate_key(key)
        ttl = validate_ttl(ttl)
        if ttl is None:
            raise EtcdUsageError('refresh needs a ttl')
        prev_index = validate_index(prev_index)
        if prev_value is not None:
            prev_value = to_text_value(prev_value, 'prev_value')
        return self._run(lambda backend: backend.refresh(key, ttl, prev_value=prev_value, prev_index=prev_index),
                         key=key)

    def mkdir(self, key, ttl=None):
        """Create directory ``key`` (v2). Raises EtcdKeyExists when it exists.

        v3 has no directories: nothing is written, the call only checks that
        nothing exists at ``key`` and returns a directory node.
        """
        validate_key(key)
        ttl = validate_ttl(ttl)
        return self._run(lambda backend: backend.mkdir(key, ttl=ttl), key=key)

    def delete(self, key, recursive=False, dir=False, prev_value=None, prev_index=None):
        """Delete ``key``; return an EtcdEvent whose ``prev_node`` is what was removed.

        A directory needs ``recursive`` (or ``dir`` for an empty v2 one).
        ``prev_value``/``prev_index`` make it a compare-and-delete of a key.
        """
        validate_key(key)
        prev_index = validate_index(prev_index)
        if prev_value is not None:
            prev_value = to_text_value(prev_value, 'prev_value')
        recursive, dir = bool(recursive), bool(dir)
        return self._run(lambda backend: backend.delete(key, recursive=recursive, dir=dir, prev_value=prev_value,
                                                        prev_index=prev_index),
                         key=key)

    def delete_many(self, keys, recursive=False):
        """Delete every key that exists; return the list of EtcdEvents (missing keys skipped)."""
        events = []
        for key in keys:
            try:
                events.append(self.delete(key, recursive=recursive))
            except EtcdKeyNotFound:
                continue
        return events

    # -- watches -------------------------------------------------------------------

    def watch(self, key, recursive=False, index=None, timeout=None):
        """Wait for the next change of ``key`` (or below it with ``recursive``).

        ``index`` starts from that index/revision (older changes are returned
        at once); without it only changes after the call count. Raises
        EtcdWatchTimeout after ``timeout`` seconds and EtcdWatchIndexCleared
        when ``index`` is older than the history the server keeps.
        """
        validate_key(key)
        index = validate_index(index, 'index')
        if timeout is not None and float(timeout) <= 0:
            raise EtcdUsageError('watch timeout must be a positive number of seconds, got %r' % (timeout,))
        return self.watch_events(key, recursive, index, None if timeout is None else float(timeout))[0]

    def watch_events(self, key, recursive=False, index=None, timeout=None):
        """Like ``watch``, but return every EtcdEvent of the next change (v3 sends the events
        of one revision together; v2 one event)."""
        validate_key(key)
        index = validate_index(index, 'index')
        recursive = bool(recursive)
        return self._run(lambda backend: backend.watch(key, recursive=recursive, index=index, timeout=timeout),
                         retry_sent=True, watch=True)

    def watch_iter(self, key, recursive=False, index=None, idle_timeout=None, resync=True,
                   stop=None, reconnect_delay=None, catch_up=None):
        """Yield every change of ``key`` (or below it) from ``index`` on, for ever.

        * ``idle_timeout``: yield ``None`` when that many seconds pass without
          a change (lets a daemon do periodic work in the same loop).
        * ``resync``: on EtcdWatchIndexCleared read the key again and yield an
          EtcdEvent with action ``resync`` and the fresh ``node`` (``None``
          when the key is gone); with ``resync=False`` the error is raised.
        * ``catch_up``: with the v2 API, which sends one change per request,
          a change that arrives more than ``catch_up`` indexes behind the store
          ends the replay of the backlog: the key is read again and a
          ``resync`` event (as above) takes the place of the changes skipped.
          For watchers that want the latest state rather than every step.
        * ``stop``: a ``threading.Event``; the iterator returns once it is set
          (checked at least every second).
        * ``reconnect_delay``: on EtcdConnectionError wait that many seconds
          and try again (from the same index) instead of raising.
        """
        return follow_changes(self, key, recursive=recursive, index=index, idle_timeout=idle_timeout,
                              resync=resync, stop=stop, reconnect_delay=reconnect_delay, catch_up=catch_up)

    # -- cluster ---------------------------------------------------------------------

    def _member_backend(self, url):
        try:
            endpoint = parse_endpoints([url], tls=bool(self._ca_cert or self._client_cert))[0]
        except EtcdUsageError:
            return None, False
        if endpoint in self._backends:
            return self._backends[endpoint], False
        return self._new_backend(endpoint), True

    def cluster_info(self):
        """Members, leader, per-member health and versions (like ``etcdctl
        cluster-health`` and ``member list``).

        Every member is asked through its first client URL, so those URLs must
        be reachable from here for its health to show.
        """
        cluster_id, members = self._run(lambda backend: backend.members(), retry_sent=True)
        server_version, cluster_version = self._run(lambda backend: backend.version(), retry_sent=True)
        result_members, leader, leader_name = ask_members(members, self._member_backend)
        return {
            'api_version': self.api_version,
            'endpoint': self.endpoint,
            'cluster_id': cluster_id,
            'leader': leader,
            'leader_name': leader_name,
            'healthy': bool(result_members) and leader is not None
            and all(info['healthy'] for info in result_members),
            'members': result_members,
            'version': {'server': server_version, 'cluster': cluster_version},
        }

    # -- users, roles and authentication ---------------------------------------------------

    def access_state(self):
        """The cluster's users, roles and whether authentication is on (an AccessState)."""
        return self._run(lambda backend: backend.access().read(), retry_sent=True)

    def change_access(self, changes):
        """Carry out the changes of ``plan_access``, in order, on one member."""
        return self._run(lambda backend: apply_access(backend.access(), changes))

    # -- etcd v3 leases (see supports_leases) ----------------------------------------------

    def grant_lease(self, ttl):
        """Grant an etcd v3 lease of ``ttl`` seconds; return its id."""
        return self._run(lambda backend: backend.grant(ttl))

    def set_on_lease(self, key, value, lease_id, prev_exist=None):
        """Write ``key`` on the etcd v3 lease ``lease_id`` (EtcdLockLost when it expired);
        ``prev_exist`` as for ``set``."""
        validate_key(key)
        value = to_text_value(value)
        return self._run(lambda backend: backend.set(key, value, prev_exist=prev_exist, lease=lease_id), key=key)

    def keep_lease_alive(self, lease_id):
        """Renew the etcd v3 lease ``lease_id``; return its new TTL (0 when it had expired)."""
        return self._run(lambda backend: backend.keepalive(lease_id), retry_sent=True)

    def lease_keys(self, lease_id):
        """The keys on the etcd v3 lease ``lease_id`` (a set), None when it has expired."""
        return self._run(lambda backend: backend.lease_keys(lease_id))

    def revoke_lease(self, lease_id):
        """Revoke the etcd v3 lease ``lease_id``: every key on it is deleted."""
        return self._run(lambda backend: backend.revoke(lease_id))

    # -- locks and kept keys -----------------------------------------------------------------

    def lock(self, key, ttl, value=None):
        """Return an EtcdLock on ``key`` (not yet acquired)."""
        return EtcdLock(self, key, ttl, value=value)

    def key_keeper(self, ttl):
        """Return an EtcdKeyKeeper: keys of one owner that live while it keeps them alive."""
        return EtcdKeyKeeper(self, ttl)

    # the name key_keeper had before
