# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Requests to etcd's v3 JSON gateway (``/v3/...``): authentication, error mapping,
base64 encoding and the request/response shapes the v3 backend builds on."""

from __future__ import annotations

import base64

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (
    EtcdAuthError,
    EtcdNode,
    EtcdServerError,
    EtcdWatchIndexCleared,
    prefix_range_end,
    strip_dir_key,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_http import (
    EndpointUnavailable,
    HttpTransport,
)


class InvalidToken(Exception):
    """The server refused the authentication token (it is then renewed once)."""


class LeaseNotFound(Exception):
    """The etcd v3 lease named in a request does not exist (any more)."""


def b64(text):
    if isinstance(text, str):
        text = text.encode('utf-8')
    return base64.b64encode(text).decode('ascii')


def unb64(data):
    if not data:
        return ''
    return base64.b64decode(data).decode('utf-8', 'replace')


def as_int(value, default=0):
    if value is None or value == '':
        return default
    return int(value)


def hex_id(value):
    if value in (None, '', 0, '0'):
        return None
    return '%x' % int(value)


class V3Gateway(object):
    """One endpoint's v3 JSON gateway: authenticated POSTs and their answers as EtcdNodes."""

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
            except InvalidToken:
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
            raise InvalidToken()
        if 'authentication failed' in low or 'invalid user id or password' in low:
            raise EtcdAuthError('authentication failed for user %r: wrong user name or password'
                                % self._username, key=key)
        if 'permission denied' in low or code == 7:
            raise EtcdAuthError('permission denied%s for user %r%s' % (
                ' on key %s' % key if key else '', self._username,
                '' if self._username else ' (no username given)'), key=key)
        if 'requested lease not found' in low:
            raise LeaseNotFound()
        if 'compacted' in low:
            raise EtcdWatchIndexCleared('requested revision was compacted: %s' % message, key=key)
        if 'no leader' in low or 'leader changed' in low or code == 14:
            raise EndpointUnavailable(self.endpoint, 'member cannot serve requests: %s' % message)
        raise EtcdServerError('etcd v3 %s failed%s: %s (HTTP %s%s)' % (
            path, ' for key %s' % key if key else '', message or 'no error text', status,
            ', code %s' % code if code is not None else ''), key=key, code=code)

    def _revision(self, result):
        return as_int((result or {}).get('header', {}).get('revision'))

    def _kv_node(self, kv, revision=None):
        return EtcdNode(
            key=unb64(kv.get('key')),
            value=unb64(kv.get('value')),
            index=as_int(kv.get('mod_revision')),
            created_index=as_int(kv.get('create_revision')),
            version=as_int(kv.get('version')),
            lease=as_int(kv.get('lease')) or None,
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
        req = {'key': b64(key)}
        if range_end is not None:
            req['range_end'] = b64(range_end)
        if count_only:
            req['count_only'] = True
        if limit:
            req['limit'] = str(limit)
        return {'request_range': req}

    @staticmethod
    def _cas_compares(key, prev_value=None, prev_index=None, prev_exist=None):
        kb = b64(key)
        compares = []
        if prev_exist is True:
            compares.append({'key': kb, 'target': 'VERSION', 'result': 'GREATER', 'version': '0'})
        elif prev_exist is False:
            compares.append({'key': kb, 'target': 'VERSION', 'result': 'EQUAL', 'version': '0'})
        if prev_value is not None:
            compares.append({'key': kb, 'target': 'VALUE', 'result': 'EQUAL', 'value': b64(prev_value)})
        if prev_index is not None:
            compares.append({'key': kb, 'target': 'MOD', 'result': 'EQUAL', 'mod_revision': str(prev_index)})
        return compares

    @staticmethod
    def _no_children(prefix):
        pb = prefix.encode('utf-8')
        return {'key': b64(pb), 'range_end': b64(prefix_range_end(pb)),
                'target': 'CREATE', 'result': 'EQUAL', 'create_revision': '0'}

    @staticmethod
    def _range_kvs(response):
        return (response.get('response_range') or {}).get('kvs') or []

    @staticmethod
    def _range_count(response):
        return as_int((response.get('response_range') or {}).get('count'))

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

    def _exact_and_children(self, responses, revision):
        kvs = self._range_kvs(responses[0]) if responses else []
        actual = self._kv_node(kvs[0], revision) if kvs else None
        children = self._range_count(responses[1]) if len(responses) > 1 else 0
        return actual, children
