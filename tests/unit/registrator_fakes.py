# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""In-memory stand-ins for etcd (a backend under the real EtcdClient) and the Docker API.

FakeStore keeps keys with v2 TTLs or v3 leases on a manual clock (``advance``) and records
what a watcher of the store would have seen (``events``) and every backend call (``calls``).
FakeDocker answers ``containers``/``inspect_container``/``events``/``ping`` like
docker.APIClient, from containers the test describes.
"""

from __future__ import annotations

import copy
import itertools
import queue
import threading

import docker.errors

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_http import EndpointUnavailable
from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdClient,
    EtcdCompareFailed,
    EtcdEvent,
    EtcdKeyNotFound,
    EtcdLockLost,
    EtcdNode,
)
from etcdfleet_agents.docker.events import short_container_id


class FakeStore(object):
    def __init__(self, api_version='v3'):
        self.api_version = api_version
        self.now = 0.0
        self.keys = {}        # key -> {'value', 'expires', 'lease'}
        self.leases = {}      # id -> {'ttl', 'expires'}
        self.events = []      # (action, key, value) a watcher would receive
        self.calls = []       # backend operation names
        self.down = False
        self.index = 10
        self._ids = itertools.count(1000)
        self.lock = threading.Lock()

    # -- test controls ------------------------------------------------------------------------
    def advance(self, seconds):
        with self.lock:
            self.now += seconds
            self._expire()

    def values(self):
        with self.lock:
            self._expire()
            return dict((k, v['value']) for k, v in self.keys.items())

    def ttl_of(self, key):
        entry = self.keys[key]
        if entry['lease']:
            return self.leases[entry['lease']]['expires'] - self.now
        return None if entry['expires'] is None else entry['expires'] - self.now

    def writes(self):
        return [e for e in self.events if e[0] in ('set', 'delete')]

    def client(self):
        return EtcdClient(['http://fake:2379'], api_version=self.api_version, environ={},
                          backend_factory=lambda endpoint: FakeBackend(self, endpoint))

    # -- internals ------------------------------------------------------------------------------
    def _expire(self):
        for lease_id, lease in list(self.leases.items()):
            if lease['expires'] <= self.now:
                del self.leases[lease_id]
                for key, entry in list(self.keys.items()):
                    if entry['lease'] == lease_id:
                        del self.keys[key]
                        self.events.append(('expire', key, entry['value']))
        for key, entry in list(self.keys.items()):
            if entry['expires'] is not None and entry['expires'] <= self.now:
                del self.keys[key]
                self.events.append(('expire', key, entry['value']))

    def _node(self, key):
        entry = self.keys[key]
        ttl = self.ttl_of(key)
        return EtcdNode(key, entry['value'], index=entry['index'], lease=entry['lease'],
                        ttl=None if ttl is None else int(ttl), revision=self.index)


class FakeBackend(object):
    def __init__(self, store, endpoint):
        self.store = store
        self.endpoint = endpoint

    def __getattribute__(self, name):
        if name in ('get', 'set', 'refresh', 'delete', 'grant', 'keepalive', 'revoke', 'revision'):
            store = object.__getattribute__(self, 'store')
            store.calls.append(name)
            if store.down:
                raise EndpointUnavailable(object.__getattribute__(self, 'endpoint'), 'connection refused')
        return object.__getattribute__(self, name)

    def close(self):
        pass

    def revision(self, key):
        return self.store.index

    def get(self, key, recursive=False):
        s = self.store
        with s.lock:
            s._expire()
            if key in s.keys:
                return s._node(key)
            prefix = key.rstrip('/') + '/'
            below = sorted(k for k in s.keys if k.startswith(prefix))
            if not below:
                raise EtcdKeyNotFound('key not found: %s' % key, key=key, revision=s.index)
            root = EtcdNode(key.rstrip('/') or '/', dir=True, revision=s.index)
            dirs = {'': root}
            for k in below:
                parts = k[len(prefix):].split('/')
                parent, path = root, ''
                for part in parts[:-1]:
                    path += part + '/'
                    if path not in dirs:
                        dirs[path] = EtcdNode(prefix + path[:-1], dir=True, revision=s.index)
                        parent.children.append(dirs[path])
                    parent = dirs[path]
                parent.children.append(s._node(k))
            return root

    def set(self, key, value, ttl=None, prev_value=None, prev_index=None, prev_exist=None, lease=None):
        s = self.store
        with s.lock:
            s._expire()
            if lease is not None:
                if s.api_version != 'v3':
                    raise AssertionError('leases are a v3 thing')
                if lease not in s.leases:
                    raise EtcdLockLost('lease %x has expired' % lease, key=key)
            elif ttl and s.api_version == 'v3':
                lease = next(s._ids)
                s.leases[lease] = {'ttl': ttl, 'expires': s.now + ttl}
            s.index += 1
            prev = s._node(key) if key in s.keys else None
            s.keys[key] = {'value': value, 'lease': lease, 'index': s.index,
                           'expires': s.now + ttl if ttl and s.api_version == 'v2' else None}
            s.events.append(('set', key, value))
            return EtcdEvent('update' if prev else 'create', key, s._node(key), prev, index=s.index)

    def refresh(self, key, ttl, prev_value=None, prev_index=None):
        s = self.store
        with s.lock:
            s._expire()
            if key not in s.keys:
                raise EtcdKeyNotFound('cannot refresh %s: key not found' % key, key=key)
            entry = s.keys[key]
            if prev_value is not None and entry['value'] != prev_value:
                raise EtcdCompareFailed(key, {'value': prev_value}, {'exists': True, 'value': entry['value']})
            if s.api_version == 'v2':
                entry['expires'] = s.now + ttl
            else:
                raise AssertionError('the registrator renews v3 keys through their lease')
            return s._node(key)

    def delete(self, key, recursive=False, dir=False, prev_value=None, prev_index=None):
        s = self.store
        with s.lock:
            s._expire()
            if key not in s.keys:
                raise EtcdKeyNotFound('key not found: %s' % key, key=key)
            entry = s.keys[key]
            if prev_value is not None and entry['value'] != prev_value:
                raise EtcdCompareFailed(key, {'value': prev_value}, {'exists': True, 'value': entry['value']})
            prev = s._node(key)
            del s.keys[key]
            s.index += 1
            s.events.append(('delete', key, entry['value']))
            return EtcdEvent('delete', key, None, prev, index=s.index)

    def grant(self, ttl):
        s = self.store
        with s.lock:
            lease = next(s._ids)
            s.leases[lease] = {'ttl': ttl, 'expires': s.now + ttl}
            return lease

    def keepalive(self, lease):
        s = self.store
        with s.lock:
            s._expire()
            if lease not in s.leases:
                return 0
            s.leases[lease]['expires'] = s.now + s.leases[lease]['ttl']
            return s.leases[lease]['ttl']

    def lease_keys(self, lease):
        s = self.store
        with s.lock:
            s._expire()
            if lease not in s.leases:
                return None
            return set(key for key, entry in s.keys.items() if entry.get('lease') == lease)

    def revoke(self, lease):
        s = self.store
        with s.lock:
            s.leases.pop(lease, None)
            for key, entry in list(s.keys.items()):
                if entry['lease'] == lease:
                    del s.keys[key]
                    s.events.append(('delete', key, entry['value']))


# ---------------------------------------------------------------------------------------------
# Docker
# ---------------------------------------------------------------------------------------------

class FakeStream(object):
    """A Docker event stream: yields what FakeDocker.emit puts in, until closed or ended."""

    END = object()

    def __init__(self):
        self.items = queue.Queue()
        self.closed = False

    def __iter__(self):
        while True:
            item = self.items.get()
            if item is self.END or self.closed:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self):
        self.closed = True
        self.items.put(self.END)


class FakeDocker(object):
    """Answers like docker.APIClient for the calls the registrator makes."""

    base_url = 'http+docker://fake'

    def __init__(self):
        self.containers_by_id = {}
        self.down = False
        self.streams = []
        self.connected = threading.Event()
        self.inspected = []
        self._ids = itertools.count(1)

    # -- test controls ------------------------------------------------------------------------
    def add(self, name, image='nginx:1.25', ports=(('80/tcp', '32768'),), labels=None, env=None,
            health=None, running=True, ip='172.17.0.2', network_mode='bridge', cid=None):
        cid = cid or ('%064x' % next(self._ids))
        bindings = {}
        exposed = {}
        for spec, host_port in ports:
            exposed[spec] = {}
            bindings[spec] = [{'HostIp': '0.0.0.0', 'HostPort': str(host_port)}] if host_port else None
        state = {'Running': running, 'Status': 'running' if running else 'exited'}
        if health:
            state['Health'] = {'Status': health}
        self.containers_by_id[cid] = {
            'Id': cid, 'Name': '/' + name, 'Image': 'sha256:' + 'ab' * 32,
            'Config': {'Image': image, 'Labels': dict(labels or {}), 'Env': list(env or []),
                       'ExposedPorts': exposed},
            'HostConfig': {'NetworkMode': network_mode},
            'State': state,
            'NetworkSettings': {'IPAddress': ip, 'Ports': bindings,
                                'Networks': {network_mode: {'IPAddress': ip}}},
        }
        return cid

    def update(self, cid, running=None, health=None, ports=None, name=None):
        doc = self.containers_by_id[cid]
        if running is not None:
            doc['State']['Running'] = running
        if health is not None:
            doc['State']['Health'] = {'Status': health}
        if ports is not None:
            doc['NetworkSettings']['Ports'] = dict(
                (spec, [{'HostIp': '0.0.0.0', 'HostPort': str(p)}] if p else None) for spec, p in ports)
        if name is not None:
            doc['Name'] = '/' + name

    def remove(self, cid):
        self.containers_by_id.pop(cid, None)

    def emit(self, cid, action):
        doc = self.containers_by_id.get(cid)
        name = doc['Name'].lstrip('/') if doc else short_container_id(cid)
        event = {'Type': 'container', 'Action': action,
                 'Actor': {'ID': cid, 'Attributes': {'name': name}}}
        self.streams[-1].items.put(event)

    def end_stream(self, error=None):
        self.streams[-1].items.put(error if error is not None else FakeStream.END)

    # -- docker.APIClient ---------------------------------------------------------------------
    def _check(self):
        if self.down:
            raise docker.errors.DockerException('Error while fetching server API version: connection refused')

    def ping(self):
        self._check()
        return True

    def close(self):
        pass

    def containers(self, quiet=False):
        self._check()
        return [{'Id': cid} for cid, doc in sorted(self.containers_by_id.items()) if doc['State']['Running']]

    def inspect_container(self, cid):
        self._check()
        self.inspected.append(cid)
        if cid not in self.containers_by_id:
            raise docker.errors.NotFound('No such container: %s' % cid)
        return copy.deepcopy(self.containers_by_id[cid])

    def events(self, decode=None, filters=None):
        self._check()
        stream = FakeStream()
        self.streams.append(stream)
        self.connected.set()
        return stream
