# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Watches over the v3 JSON gateway: one ``/v3/watch`` stream kept open between calls
that continue where the previous one stopped."""

from __future__ import annotations

import json
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (
    ACTION_CREATE,
    ACTION_DELETE,
    ACTION_UPDATE,
    EtcdAuthError,
    EtcdEvent,
    EtcdServerError,
    EtcdWatchIndexCleared,
    EtcdWatchTimeout,
    dir_prefix,
    prefix_range_end,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_http import (
    EndpointUnavailable,
    decode_json,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_v3_gateway import (
    InvalidToken,
    V3Gateway,
    as_int,
    b64,
    unb64,
)


class V3WatchingGateway(V3Gateway):
    """A V3Gateway that also follows changes through a watch stream."""

    # (key, recursive, next revision, stream) of the stream left open, or None
    _watch = None

    def close_watch(self):
        """End the open watch stream, if any (the server forgets its watcher)."""
        if self._watch is not None:
            self._watch[3].close()
            self._watch = None

    def _event(self, raw, revision):
        kv = raw.get('kv') or {}
        prev_kv = raw.get('prev_kv')
        prev = self._kv_node(prev_kv, revision) if prev_kv else None
        key = unb64(kv.get('key'))
        index = as_int(kv.get('mod_revision'))
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
            create = {'key': b64(key), 'prev_kv': True}
            if recursive:
                create['range_end'] = b64(prefix_range_end(prefix.encode('utf-8')))
            if index is not None:
                create['start_revision'] = str(index)
            status, stream = self.transport.open_stream(
                'POST', self.prefix + '/watch', {'create_request': create}, headers=self._headers(),
                timeout=self.timeout)
            if status != 200:
                data = decode_json(stream, self.endpoint, '/watch')
                try:
                    self._raise(status, data, '/watch', key)
                except InvalidToken:
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
                    self._raise(as_int(data.get('http_code'), 500), data, '/watch', key)
                except InvalidToken:
                    self._auth_done = False
                    raise EtcdAuthError('authentication token rejected while watching %s' % key, key=key)
            result = message.get('result') or {}
            revision = self._revision(result)
            if result.get('compact_revision') and result.get('canceled'):
                self.close_watch()
                oldest = as_int(result.get('compact_revision'))
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
