# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""etcd's users, roles and the authentication switch, in one shape for both APIs.

A permission is a key pattern in the notation of etcd's v2 API: ``/a/b`` is that key alone,
``/a/b*`` every key starting with ``/a/b`` (the v3 API gets the same as a key or a key range).
``AccessState`` is what a cluster holds; ``plan_access`` turns it and a wanted state into the
list of changes, which ``V2Access`` and ``V3Access`` carry out on one endpoint.
"""

from __future__ import annotations

import re

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (
    EtcdAuthError,
    EtcdServerError,
    EtcdUsageError,
    prefix_range_end,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_v3_gateway import b64, unb64

ROOT = 'root'
GUEST = 'guest'
NAME_RE = re.compile(r'\A[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z')
PATTERN_RE = re.compile(r'\A/[\x21-\x29\x2b-\x7e]*\*?\Z')  # printable, no space; '*' only at the end


def validate_name(name, what):
    """A user or role name: letters, digits and ``_.@-``, at most 64 characters."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise EtcdUsageError('%s name %r is not valid: use letters, digits and _.@- (at most 64)' % (what, name))
    return name


def validate_pattern(pattern):
    """A permission: ``/key``, or ``/prefix*`` for every key starting with it (printable ASCII, ``*`` only at the end)."""
    if not isinstance(pattern, str) or not PATTERN_RE.match(pattern) or '//' in pattern:
        raise EtcdUsageError('permission %r is not valid: give a key (/a/b) or every key starting with a '
                             'prefix (/a/b/*, /a/b*), printable ASCII without spaces' % (pattern,))
    return pattern


class AccessState(object):
    """Authentication on or off, users with their roles, roles with their permissions."""

    def __init__(self, enabled=False, users=None, roles=None, has_root_role=True):
        self.enabled = bool(enabled)
        self.has_root_role = has_root_role  # the v2 API has it built in; v3 needs it created
        self.users = dict((name, set(roles)) for name, roles in (users or {}).items())
        self.roles = dict((name, {'read': set(perms.get('read') or ()), 'write': set(perms.get('write') or ())})
                          for name, perms in (roles or {}).items())

    def describe(self, users=None, roles=None):
        """A sorted dict of the state, limited to the named users and roles when given."""
        return {
            'enabled': self.enabled,
            'users': dict((name, sorted(self.users[name])) for name in sorted(self.users)
                          if users is None or name in users),
            'roles': dict((name, {'read': sorted(perms['read']), 'write': sorted(perms['write'])})
                          for name, perms in sorted(self.roles.items()) if roles is None or name in roles),
        }


def plan_access(state, roles, users, enabled=None, root_password=None, update_password='on_create',
                api_version='v2'):
    """The changes that make ``state`` hold ``roles`` and ``users`` (and ``enabled``).

    ``roles``: {name: {'read': [...], 'write': [...]}}, exactly those permissions.
    ``users``: {name: {'password': str or None, 'roles': [...]}}, exactly those roles.
    Users and roles not named are left alone. Turning authentication on needs a ``root`` user;
    one is created with ``root_password`` when missing. On the v2 API the ``guest`` role (the
    rights of requests without a user) is created empty before authentication is turned on, so
    the cluster is never open (etcd would give it every key); name it in ``roles`` to grant some.
    Returns a list of ``(operation, args...)`` tuples.
    """
    changes = []
    roles = dict(roles)
    if api_version == 'v2' and enabled and GUEST not in roles and GUEST not in state.roles:
        roles[GUEST] = {'read': [], 'write': []}
    for name in sorted(roles):
        validate_name(name, 'role')
        if name == ROOT:
            raise EtcdUsageError('the root role has every permission and cannot be changed')
        wanted = dict((kind, set(validate_pattern(p) for p in roles[name].get(kind) or ())) for kind in ('read', 'write'))
        have = state.roles.get(name)
        if have is None:
            changes.append(('add_role', name))
            have = {'read': set(), 'write': set()}
        grant = dict((kind, sorted(wanted[kind] - have[kind])) for kind in ('read', 'write'))
        revoke = dict((kind, sorted(have[kind] - wanted[kind])) for kind in ('read', 'write'))
        if grant['read'] or grant['write']:
            changes.append(('grant_role', name, grant['read'], grant['write']))
        if revoke['read'] or revoke['write']:
            changes.append(('revoke_role', name, revoke['read'], revoke['write']))
    known_roles = set(state.roles) | set(roles) | set([ROOT])
    users = dict(users)
    if enabled and ROOT not in state.users and ROOT not in users:
        if not root_password:
            raise EtcdUsageError('turning authentication on needs a root user: give root_password')
        users[ROOT] = {'password': root_password, 'roles': [ROOT]}
    if ROOT in users and ROOT not in users[ROOT].get('roles', [ROOT]):
        raise EtcdUsageError('the root user must keep the root role')
    if ROOT in users and not state.has_root_role:
        changes.insert(0, ('add_role', ROOT))
    for name in sorted(users):
        validate_name(name, 'user')
        spec = users[name]
        wanted = set(validate_name(role, 'role') for role in spec.get('roles') or ())
        unknown = sorted(wanted - known_roles)
        if unknown:
            raise EtcdUsageError('user %s names role(s) that do not exist: %s' % (name, ', '.join(unknown)))
        have = state.users.get(name)
        if have is None:
            if not spec.get('password'):
                raise EtcdUsageError('user %s does not exist: give its password' % name)
            changes.append(('add_user', name, spec['password']))
            have = set()
            if api_version == 'v2' and name == ROOT:
                have = set([ROOT])  # etcd's v2 API makes its root user with the root role
        elif spec.get('password') and update_password == 'always':
            changes.append(('set_password', name, spec['password']))
        if sorted(wanted - have):
            changes.append(('grant_user', name, sorted(wanted - have)))
        if sorted(have - wanted):
            changes.append(('revoke_user', name, sorted(have - wanted)))
    if enabled is not None and bool(enabled) != state.enabled:
        changes.append(('enable',) if enabled else ('disable',))
    return changes


def apply_access(access, changes):
    """Carry out ``changes`` (from plan_access) through ``access`` (V2Access or V3Access)."""
    for change in changes:
        getattr(access, change[0])(*change[1:])


def _check(status, data, what):
    if 200 <= status < 300:
        return data
    message = ''
    if isinstance(data, dict):
        message = data.get('message') or data.get('error') or data.get('http_error') or ''
    if status in (401, 403):
        raise EtcdAuthError('%s: permission denied (%s); changing users and roles needs the root user'
                            % (what, message or 'HTTP %s' % status))
    raise EtcdServerError('%s failed: %s (HTTP %s)' % (what, message or 'no error text', status))


class StateAccess(object):
    """The changes carried out on a copy of an AccessState (what check mode reports)."""

    def __init__(self, state):
        self.state = AccessState(state.enabled, state.users, state.roles, has_root_role=state.has_root_role)

    def after(self, changes):
        apply_access(self, changes)
        return self.state

    def add_role(self, name):
        self.state.roles.setdefault(name, {'read': set(), 'write': set()})

    def grant_role(self, name, read, write):
        perms = self.state.roles.setdefault(name, {'read': set(), 'write': set()})
        perms['read'].update(read)
        perms['write'].update(write)

    def revoke_role(self, name, read, write):
        perms = self.state.roles.setdefault(name, {'read': set(), 'write': set()})
        perms['read'].difference_update(read)
        perms['write'].difference_update(write)

    def add_user(self, name, password):
        # etcd's v2 API makes its root user with the root role (plan_access grants it on v3)
        self.state.users.setdefault(name, set([ROOT]) if name == ROOT and self.state.has_root_role else set())

    def set_password(self, name, password):
        pass

    def grant_user(self, name, roles):
        self.state.users.setdefault(name, set()).update(roles)

    def revoke_user(self, name, roles):
        self.state.users.setdefault(name, set()).difference_update(roles)

    def enable(self):
        self.state.enabled = True

    def disable(self):
        self.state.enabled = False


class V2Access(object):
    """Users and roles through the v2 API's ``/v2/auth`` endpoints (``transport``: an HttpTransport)."""

    def __init__(self, transport):
        self.transport = transport

    def _call(self, method, path, body=None, what=None):
        status, data = self.transport.request_json(method, '/v2/auth' + path, body)
        return _check(status, data, what or '%s /v2/auth%s' % (method, path))

    def read(self):
        enabled = bool((self._call('GET', '/enable') or {}).get('enabled'))
        roles = {}
        for role in (self._call('GET', '/roles') or {}).get('roles') or []:
            kv = ((role.get('permissions') or {}).get('kv') or {})
            roles[role.get('role')] = {'read': kv.get('read') or [], 'write': kv.get('write') or []}
        users = {}
        for user in (self._call('GET', '/users') or {}).get('users') or []:
            names = [r.get('role') if isinstance(r, dict) else r for r in user.get('roles') or []]
            users[user.get('user')] = names
        roles.pop(ROOT, None)
        return AccessState(enabled, users, roles)

    def add_role(self, name):
        self._call('PUT', '/roles/' + name, {'role': name, 'permissions': {'kv': {'read': [], 'write': []}}})

    def grant_role(self, name, read, write):
        self._call('PUT', '/roles/' + name, {'role': name, 'grant': {'kv': {'read': read, 'write': write}}})

    def revoke_role(self, name, read, write):
        self._call('PUT', '/roles/' + name, {'role': name, 'revoke': {'kv': {'read': read, 'write': write}}})

    def add_user(self, name, password):
        self._call('PUT', '/users/' + name, {'user': name, 'password': password}, what='creating user %s' % name)

    def set_password(self, name, password):
        self._call('PUT', '/users/' + name, {'user': name, 'password': password},
                   what='changing the password of %s' % name)

    def grant_user(self, name, roles):
        self._call('PUT', '/users/' + name, {'user': name, 'grant': roles})

    def revoke_user(self, name, roles):
        self._call('PUT', '/users/' + name, {'user': name, 'revoke': roles})

    def enable(self):
        self._call('PUT', '/enable')

    def disable(self):
        self._call('DELETE', '/enable')


def _v3_perm(pattern):
    """(key, range_end) of a permission pattern on the v3 API."""
    if pattern.endswith('*'):
        prefix = pattern[:-1]
        return b64(prefix), b64(prefix_range_end(prefix.encode('utf-8')))
    return b64(pattern), None


def _v3_pattern(perm):
    key = unb64(perm.get('key') or '')
    range_end = perm.get('range_end')
    if range_end and unb64(range_end) == prefix_range_end(key.encode('utf-8')).decode('utf-8', 'replace'):
        return key + '*'
    if range_end:
        return '%s..%s' % (key, unb64(range_end))  # a range made by other tools: shown, then revoked
    return key


class V3Access(object):
    """Users and roles through the v3 JSON gateway (``gateway``: a V3Gateway, which authenticates)."""

    def __init__(self, gateway):
        self.gateway = gateway

    def _post(self, path, body):
        return self.gateway._post('/auth' + path, body)  # pylint: disable=protected-access

    def _enabled(self):
        status, data = self.gateway.transport.request_json(
            'POST', self.gateway.prefix + '/auth/authenticate', {'name': '', 'password': ''})
        text = str((data or {}).get('error') or (data or {}).get('message') or '') if isinstance(data, dict) else ''
        return 'not enabled' not in text

    def read(self):
        enabled = self._enabled()
        roles = dict((name, self._role(name)) for name in self._post('/role/list', {}).get('roles') or [])
        users = {}
        for name in self._post('/user/list', {}).get('users') or []:
            users[name] = self._post('/user/get', {'name': name}).get('roles') or []
        has_root_role = roles.pop(ROOT, None) is not None
        return AccessState(enabled, users, roles, has_root_role=has_root_role)

    def _role(self, name):
        perms = {'read': [], 'write': []}
        for perm in self._post('/role/get', {'role': name}).get('perm') or []:
            pattern = _v3_pattern(perm)
            kind = perm.get('permType') or 'READ'  # READ is 0, left out of the JSON
            if kind in ('READ', 'READWRITE'):
                perms['read'].append(pattern)
            if kind in ('WRITE', 'READWRITE'):
                perms['write'].append(pattern)
        return perms

    def add_role(self, name):
        self._post('/role/add', {'name': name})

    def grant_role(self, name, read, write):
        for pattern in sorted(set(read) | set(write)):
            kind = 'READWRITE' if pattern in read and pattern in write else ('READ' if pattern in read else 'WRITE')
            key, range_end = _v3_perm(pattern)
            perm = {'permType': kind, 'key': key}
            if range_end:
                perm['range_end'] = range_end
            self._post('/role/grant', {'name': name, 'perm': perm})

    def revoke_role(self, name, read, write):
        # a v3 permission holds both kinds: revoke it whole, then grant back the kind that stays
        state = self._role(name)
        for pattern in sorted(set(read) | set(write)):
            if '..' in pattern:
                key, dummy, end = pattern.partition('..')
                body = {'role': name, 'key': b64(key), 'range_end': b64(end)}
            else:
                key, range_end = _v3_perm(pattern)
                body = {'role': name, 'key': key}
                if range_end:
                    body['range_end'] = range_end
            self._post('/role/revoke', body)
            keep_read = [pattern] if pattern in state['read'] and pattern not in read else []
            keep_write = [pattern] if pattern in state['write'] and pattern not in write else []
            if keep_read or keep_write:
                self.grant_role(name, keep_read, keep_write)

    def add_user(self, name, password):
        self._post('/user/add', {'name': name, 'password': password})

    def set_password(self, name, password):
        self._post('/user/changepw', {'name': name, 'password': password})

    def grant_user(self, name, roles):
        for role in roles:
            self._post('/user/grant', {'user': name, 'role': role})

    def revoke_user(self, name, roles):
        for role in roles:
            self._post('/user/revoke', {'name': name, 'role': role})

    def enable(self):
        self._post('/enable', {})

    def disable(self):
        self._post('/disable', {})
