# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which etcd endpoints failed lately, shared by the EtcdClients of one process."""

from __future__ import annotations

import threading
import time


class EndpointHealth(object):
    """Endpoints that failed lately, shared by the clients of one process.

    A client that cannot reach an endpoint marks it down; every client sharing
    this object then tries it last, for ``hold`` seconds or until a request to
    it succeeds, instead of each client waiting for its own timeout on it (a
    member whose machine died does not refuse connections: it does not answer).
    """

    def __init__(self, hold=10.0, clock=time.monotonic):
        self.hold = float(hold)
        self.clock = clock
        self._down = {}
        self._lock = threading.Lock()

    def down(self, endpoint):
        with self._lock:
            self._down[endpoint] = self.clock()

    def up(self, endpoint):
        if endpoint in self._down:
            with self._lock:
                self._down.pop(endpoint, None)

    def is_down(self, endpoint):
        since = self._down.get(endpoint)
        return since is not None and self.clock() - since < self.hold

    def order(self, endpoints):
        """``endpoints`` with the ones marked down moved to the end (order otherwise kept)."""
        if not self._down:
            return list(endpoints)
        down = [e for e in endpoints if self.is_down(e)]
        return [e for e in endpoints if e not in down] + down
