# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Result model, exceptions and small helpers shared by the etcd backends.

Import the public names from ``etcd.py``; this file exists so that both
backends can use the same classes without importing each other.
"""

from __future__ import annotations

import calendar
import os
import re
import time

from urllib.parse import urlsplit

DEFAULT_ENDPOINT = 'http://127.0.0.1:2379'
ENDPOINTS_ENV = 'ETCDCTL_ENDPOINTS'
API_VERSIONS = ('v2', 'v3')

ACTION_CREATE = 'create'
ACTION_UPDATE = 'update'
ACTION_DELETE = 'delete'
ACTION_EXPIRE = 'expire'
ACTION_RESYNC = 'resync'


# --------------------------------------------------------------------------
# Exceptions
# --------------------------------------------------------------------------

class EtcdError(Exception):
    """Base class of every error raised by the etcd client layer."""

    def __init__(self, message, key=None):
        super(EtcdError, self).__init__(message)
        self.message = message
        self.key = key

    def __str__(self):
        return self.message


class EtcdUsageError(EtcdError, ValueError):
    """A caller passed an invalid argument (bad TTL, bad endpoint, ...)."""


class EtcdUnsupported(EtcdError):
    """The operation has no meaning for the selected API version."""


class EtcdMissingLibrary(EtcdError):
    """A Python library needed by the selected backend is not installed."""

    def __init__(self, library, import_error=None, reason=None):
        message = 'the Python library %s is required%s but could not be imported' % (
            library, ' ' + reason if reason else '')
        if import_error is not None:
            message += ': %s' % import_error
        super(EtcdMissingLibrary, self).__init__(message)
        self.library = library
        self.import_error = import_error
        self.reason = reason


class EtcdConnectionError(EtcdError):
    """No endpoint could be reached, or a request failed on the wire.

    ``failures`` is a list of ``(endpoint, reason)`` pairs, one per endpoint
    tried, in the order they were tried.
    """

    def __init__(self, message, failures=None, key=None):
        super(EtcdConnectionError, self).__init__(message, key=key)
        self.failures = list(failures or [])

    @property
    def endpoints(self):
        return [endpoint for endpoint, dummy in self.failures]


class EtcdTLSError(EtcdConnectionError):
    """TLS setup or handshake failed (certificates, CA, http vs https)."""


class EtcdAuthError(EtcdError):
    """Authentication failed or the user lacks the permission needed."""


class EtcdServerError(EtcdError):
    """The server answered with an error this layer has no better class for."""

    def __init__(self, message, key=None, code=None):
        super(EtcdServerError, self).__init__(message, key=key)
        self.code = code


class EtcdKeyError(EtcdError):
    """Base class for errors about one key."""


class EtcdKeyNotFound(EtcdKeyError):
    """The key does not exist.

    ``revision`` is the store index/revision at the time of the answer when
    the server told it (v2 ``index`` field, v3 header revision), so a caller
    can watch for the key's creation from ``revision + 1``.
    """

    def __init__(self, message, key=None, revision=None):
        super(EtcdKeyNotFound, self).__init__(message, key=key)
        self.revision = revision


class EtcdKeyExists(EtcdKeyError):
    """The key exists where the operation needs it absent (mkdir)."""


class EtcdNotAFile(EtcdKeyError):
    """The key is a directory (v2) or a prefix with keys below it (v3) where a value was expected."""


class EtcdNotADir(EtcdKeyError):
    """The key holds a value where a directory was expected."""


class EtcdDirNotEmpty(EtcdKeyError):
    """A directory was to be removed without ``recursive`` but has children."""


class EtcdCompareFailed(EtcdKeyError):
    """A compare-and-swap/compare-and-delete condition did not hold.

    ``expected`` is a dict of the conditions (``value``, ``index``, ``exists``)
    and ``actual`` a dict describing the key as it was (``exists`` and, when it
    exists, ``value`` and ``index``).
    """

    def __init__(self, key, expected, actual, message=None):
        self.expected = dict(expected)
        self.actual = dict(actual)
        if message is None:
            message = 'compare failed for key %s: expected %s; actual %s' % (
                key, describe_condition(self.expected), describe_condition(self.actual))
        super(EtcdCompareFailed, self).__init__(message, key=key)


class EtcdWatchTimeout(EtcdError):
    """No change arrived before the watch timeout."""

    def __init__(self, message, key=None, timeout=None):
        super(EtcdWatchTimeout, self).__init__(message, key=key)
        self.timeout = timeout


class EtcdWatchIndexCleared(EtcdError):
    """The index/revision a watch should start from is no longer available.

    v2 keeps only the last 1000 events; v3 drops history on compaction.
    ``index`` is the requested start, ``oldest`` the oldest index still
    available when known, ``current`` the store's current index when known.
    Recover by reading the key (recursively for a prefix) and watching again
    from the returned node's ``revision + 1``; ``EtcdClient.watch_iter`` does
    this by itself unless told not to.
    """

    def __init__(self, message, key=None, index=None, oldest=None, current=None):
        super(EtcdWatchIndexCleared, self).__init__(message, key=key)
        self.index = index
        self.oldest = oldest
        self.current = current


class EtcdLockLost(EtcdError):
    """A lock/lease held by this client expired or was taken by another owner."""


# --------------------------------------------------------------------------
# Result model
# --------------------------------------------------------------------------

_EXPIRATION = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)\Z')


def expiration_time(text):
    """Seconds since the epoch of an etcd v2 ``expiration`` (RFC 3339 with nanoseconds), or
    ``None`` when ``text`` is not one."""
    match = _EXPIRATION.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    base, fraction, zone = match.groups()
    try:
        seconds = calendar.timegm(time.strptime(base, '%Y-%m-%dT%H:%M:%S'))
    except ValueError:
        return None
    if fraction:
        seconds += int(fraction) / 10.0 ** len(fraction)
    if zone != 'Z':
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[0] == '+' else -offset
    return seconds


class EtcdNode(object):
    """One key or directory as read from etcd, the same for v2 and v3.

    ``index`` is the v2 ``modifiedIndex`` or the v3 ``mod_revision``;
    ``created_index`` the v2 ``createdIndex`` or v3 ``create_revision``;
    ``ttl`` the remaining seconds to live or ``None``; ``lease`` the v3 lease
    ID (``None`` on v2); ``children`` a list of nodes (directories only);
    ``revision`` the store index (v2 ``X-Etcd-Index``) or revision (v3 header)
    at the time of the read, so that ``revision + 1`` is where to watch from.
    """

    __slots__ = ('key', 'value', 'dir', 'index', 'created_index', 'ttl', 'expiration',
                 'lease', 'children', 'revision', 'version')

    def __init__(self, key, value=None, dir=False, index=None, created_index=None, ttl=None,
                 expiration=None, lease=None, children=None, revision=None, version=None):
        self.key = key
        self.value = value
        self.dir = bool(dir)
        self.index = index
        self.created_index = created_index
        self.ttl = ttl
        self.expiration = expiration
        self.lease = lease
        self.children = list(children or [])
        self.revision = revision
        self.version = version

    def seconds_left(self, now=None):
        """Seconds until the key was due to expire (v2 ``expiration``; negative once past), as
        this machine's clock (``now``, default ``time.time()``) sees it; ``None`` when unknown
        (no TTL, a v3 key, or an expiration that does not parse)."""
        due = expiration_time(self.expiration)
        if due is None:
            return None
        return due - (time.time() if now is None else now)

    def __repr__(self):
        return 'EtcdNode(key=%r, value=%r, dir=%r, index=%r, ttl=%r, children=%d)' % (
            self.key, self.value, self.dir, self.index, self.ttl, len(self.children))

    def __eq__(self, other):
        if not isinstance(other, EtcdNode):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __ne__(self, other):
        result = self.__eq__(other)
        if result is NotImplemented:
            return result
        return not result

    __hash__ = None

    def walk(self):
        """Yield this node and every descendant, depth first, parents first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def leaves(self):
        """Yield every node that holds a value (not directories)."""
        for node in self.walk():
            if not node.dir:
                yield node

    def flatten(self):
        """Return ``{key: value}`` for every value-holding node below and including this one."""
        return dict((node.key, node.value) for node in self.leaves())

    def to_dict(self, children=True):
        result = {
            'key': self.key,
            'value': self.value,
            'dir': self.dir,
            'index': self.index,
            'created_index': self.created_index,
            'ttl': self.ttl,
            'expiration': self.expiration,
            'lease': self.lease,
        }
        if self.dir or self.children:
            result['children'] = [child.to_dict() for child in self.children] if children else []
        return result


class EtcdEvent(object):
    """One change of a key: the result of a write, delete or watch.

    ``action`` is one of ``create``, ``update``, ``delete``, ``expire`` (v2
    only; v3 reports an expired lease as ``delete``) or ``resync`` (made by
    ``EtcdClient.watch_iter`` after history was lost: ``node`` is then a fresh
    recursive read, or ``None`` if the key is gone). ``raw_action`` keeps the
    server's own word (v2 ``compareAndSwap``, v3 ``PUT`` ...). ``index`` is the
    index/revision of the change: the next watch starts from ``index + 1``.
    ``revision`` is the store's index when a v2 watch delivered the change
    (``None`` when unknown): how far behind the watcher is.
    """

    __slots__ = ('action', 'key', 'node', 'prev_node', 'index', 'raw_action', 'revision')

    def __init__(self, action, key, node=None, prev_node=None, index=None, raw_action=None,
                 revision=None):
        self.action = action
        self.key = key
        self.node = node
        self.prev_node = prev_node
        self.index = index
        self.raw_action = raw_action if raw_action is not None else action
        self.revision = revision

    def __repr__(self):
        return 'EtcdEvent(action=%r, key=%r, index=%r)' % (self.action, self.key, self.index)

    @property
    def value(self):
        return self.node.value if self.node is not None else None

    @property
    def prev_value(self):
        return self.prev_node.value if self.prev_node is not None else None

    @property
    def is_delete(self):
        return self.action in (ACTION_DELETE, ACTION_EXPIRE)

    def to_dict(self):
        return {
            'action': self.action,
            'raw_action': self.raw_action,
            'key': self.key,
            'value': self.value,
            'prev_value': self.prev_value,
            'index': self.index,
            'dir': bool(self.node.dir) if self.node is not None else (
                bool(self.prev_node.dir) if self.prev_node is not None else False),
            'node': self.node.to_dict() if self.node is not None else None,
            'prev_node': self.prev_node.to_dict() if self.prev_node is not None else None,
        }


class EtcdOp(object):
    """One write of a batch (``EtcdClient.write_each``): ``EtcdOp.set(...)`` or ``EtcdOp.delete(...)``.

    The arguments and conditions are those of ``EtcdClient.set`` and ``EtcdClient.delete`` (a
    delete here removes one key, never a directory).
    """

    __slots__ = ('action', 'key', 'value', 'ttl', 'prev_value', 'prev_index', 'prev_exist')

    SET = 'set'
    DELETE = 'delete'

    def __init__(self, action, key, value=None, ttl=None, prev_value=None, prev_index=None,
                 prev_exist=None):
        self.action = action
        self.key = key
        self.value = value
        self.ttl = ttl
        self.prev_value = prev_value
        self.prev_index = prev_index
        self.prev_exist = prev_exist

    @classmethod
    def set(cls, key, value, ttl=None, prev_value=None, prev_index=None, prev_exist=None):
        return cls(cls.SET, key, value, ttl=ttl, prev_value=prev_value, prev_index=prev_index,
                   prev_exist=prev_exist)

    @classmethod
    def delete(cls, key, prev_value=None, prev_index=None):
        return cls(cls.DELETE, key, prev_value=prev_value, prev_index=prev_index)

    @property
    def conditional(self):
        return self.prev_value is not None or self.prev_index is not None or self.prev_exist is not None

    def holds_for(self, node):
        """Whether this op's conditions hold for ``node`` (None = absent), deletes needing the key."""
        if self.action == self.DELETE and node is None:
            return False
        return conditions_hold(node, self.prev_value, self.prev_index, self.prev_exist)

    def failure(self, node, revision=None):
        """The error this op meets when the key is ``node`` (None = absent)."""
        if self.action == self.DELETE and node is None and not self.conditional:
            return EtcdKeyNotFound('key not found: %s' % self.key, key=self.key, revision=revision)
        return EtcdCompareFailed(self.key, expected_of(self.prev_value, self.prev_index, self.prev_exist),
                                 actual_of(node))

    def apply_alone(self, backend):
        """Make this op with ``backend.set`` / ``backend.delete``; the key error it met is returned."""
        try:
            if self.action == self.SET:
                return backend.set(self.key, self.value, ttl=self.ttl, prev_value=self.prev_value,
                                   prev_index=self.prev_index, prev_exist=self.prev_exist)
            return backend.delete(self.key, prev_value=self.prev_value, prev_index=self.prev_index)
        except (EtcdCompareFailed, EtcdKeyNotFound, EtcdNotAFile) as exc:
            return exc

    def __repr__(self):
        return 'EtcdOp(%s %s)' % (self.action, self.key)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def describe_condition(cond):
    """Human form of a compare condition or actual state dict."""
    if not cond:
        return 'nothing'
    parts = []
    if 'exists' in cond and cond['exists'] is False:
        return 'key absent'
    if 'value' in cond:
        parts.append('value %r' % (cond['value'],))
    if 'index' in cond and cond['index'] is not None:
        parts.append('index %s' % (cond['index'],))
    if cond.get('dir'):
        parts.append('a directory')
    if not parts and cond.get('exists'):
        parts.append('key present')
    return ', '.join(parts)


def conditions_hold(node, prev_value=None, prev_index=None, prev_exist=None):
    """Evaluate compare-and-swap conditions against ``node`` (None = absent)."""
    if prev_exist is True and node is None:
        return False
    if prev_exist is False and node is not None:
        return False
    if prev_value is not None and (node is None or node.dir or node.value != prev_value):
        return False
    if prev_index is not None and (node is None or node.index != prev_index):
        return False
    return True


def expected_of(prev_value=None, prev_index=None, prev_exist=None):
    expected = {}
    if prev_exist is not None:
        expected['exists'] = prev_exist
    if prev_value is not None:
        expected['value'] = prev_value
    if prev_index is not None:
        expected['index'] = prev_index
    return expected


def actual_of(node):
    if node is None:
        return {'exists': False}
    if node.dir:
        return {'exists': True, 'dir': True, 'index': node.index}
    return {'exists': True, 'value': node.value, 'index': node.index}


def validate_ttl(ttl, name='ttl'):
    """Return ``ttl`` as a positive int, or None; raise EtcdUsageError otherwise."""
    if ttl is None:
        return None
    message = '%s must be a positive whole number of seconds, got %r' % (name, ttl)
    if isinstance(ttl, bool):
        raise EtcdUsageError(message)
    if isinstance(ttl, float):
        if ttl != int(ttl):
            raise EtcdUsageError(message)
        value = int(ttl)
    elif isinstance(ttl, int):
        value = ttl
    else:
        try:
            value = int(str(ttl).strip())
        except ValueError:
            raise EtcdUsageError(message)
    if value <= 0:
        raise EtcdUsageError(message)
    return value


def validate_index(index, name='prev_index'):
    if index is None:
        return None
    if isinstance(index, bool):
        raise EtcdUsageError('%s must be a positive integer, got %r' % (name, index))
    try:
        value = int(index)
    except (TypeError, ValueError):
        raise EtcdUsageError('%s must be a positive integer, got %r' % (name, index))
    if value <= 0 or (isinstance(index, float) and index != value):
        raise EtcdUsageError('%s must be a positive integer, got %r' % (name, index))
    return value


def validate_key(key, name='key'):
    if key is None or not isinstance(key, str) or key == '':
        raise EtcdUsageError('%s must be a non-empty string, got %r' % (name, key))
    return key


def to_text_value(value, name='value'):
    """Values are stored as text; accept str, int and float, refuse the rest."""
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list, tuple, set)):
        raise EtcdUsageError('%s must be a string, got %s %r' % (name, type(value).__name__, value))
    if isinstance(value, bytes):
        return value.decode('utf-8')
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise EtcdUsageError('%s must be a string, got %s' % (name, type(value).__name__))
    return value


def summarize_text(text, limit=160):
    """One short line out of an HTML or text body, for error messages."""
    text = re.sub(r'<[^>]*>', ' ', text or '')
    text = ' '.join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def dir_prefix(key):
    """The v3 prefix of the keys below ``key`` (``/a`` -> ``/a/``, ``/`` -> ``/``)."""
    if key.endswith('/'):
        return key
    return key + '/'


def strip_dir_key(key):
    """``/a/`` -> ``/a``; the root stays ``/``."""
    if len(key) > 1 and key.endswith('/'):
        return key.rstrip('/') or '/'
    return key


def prefix_range_end(prefix):
    """The exclusive end of the key range that starts with ``prefix`` (bytes in, bytes out)."""
    data = bytearray(prefix)
    for i in range(len(data) - 1, -1, -1):
        if data[i] < 0xff:
            data[i] += 1
            return bytes(data[:i + 1])
    # prefix of only 0xff bytes: everything from prefix on
    return b'\0'


_ENDPOINT_RE = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://')


def parse_endpoints(endpoints=None, tls=False, environ=None):
    """Normalise the endpoint list to ``scheme://host:port`` URLs.

    ``endpoints`` may be a list or a comma separated string; when empty the
    ``ETCDCTL_ENDPOINTS`` environment variable is used, then
    ``http://127.0.0.1:2379``. An endpoint without scheme gets ``https`` when
    ``tls`` is true, else ``http``; one without port gets 2379. With ``tls`` (TLS options
    given) a plain ``http://`` endpoint is refused: the options would not be used.
    """
    if environ is None:
        environ = os.environ
    items = []
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    for item in endpoints or []:
        if item is None:
            continue
        if not isinstance(item, str):
            raise EtcdUsageError('endpoints must be strings, got %s %r' % (type(item).__name__, item))
        items.extend(part.strip() for part in item.split(',') if part.strip())
    if not items:
        env_value = environ.get(ENDPOINTS_ENV, '')
        items = [part.strip() for part in env_value.split(',') if part.strip()]
    if not items:
        items = [DEFAULT_ENDPOINT.replace('http://', 'https://', 1) if tls else DEFAULT_ENDPOINT]
    result = []
    for item in items:
        url = item if _ENDPOINT_RE.match(item) else '%s://%s' % ('https' if tls else 'http', item)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ('http', 'https'):
            raise EtcdUsageError('endpoint %r: scheme must be http or https' % item)
        if tls and scheme == 'http':
            raise EtcdUsageError('endpoint %r is plain http, but TLS options (ca_cert, client_cert, client_key) '
                                 'are given: use https:// (or leave the TLS options out)' % item)
        try:
            host = parts.hostname
            port = parts.port or 2379
        except ValueError as exc:
            raise EtcdUsageError('endpoint %r is not a valid URL: %s' % (item, exc))
        if not host:
            raise EtcdUsageError('endpoint %r has no host name' % item)
        if parts.path not in ('', '/') or parts.query or parts.fragment:
            raise EtcdUsageError('endpoint %r must be scheme://host:port without a path' % item)
        if ':' in host:
            host = '[%s]' % host
        normalized = '%s://%s:%d' % (scheme, host, port)
        if normalized not in result:
            result.append(normalized)
    return result


def split_endpoint(url):
    """``https://h:1`` -> ``('https', 'h', 1)`` (IPv6 brackets removed)."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or 2379
