# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The contract between ``EtcdClient`` and an etcd API backend (v2, v3).

A backend speaks one etcd API to one endpoint. ``EtcdClient`` validates the
arguments, picks the endpoint (failover, shared endpoint health) and calls the
methods below; it never asks which API it speaks. Where the APIs differ, the
difference is a capability of the backend class:

``supports_directories``  ``mkdir`` creates a real directory (v2); without it
                          a directory is only the keys below a prefix and
                          ``mkdir`` merely checks that nothing is there (v3).
``supports_leases``       etcd v3 leases: ``grant``/``keepalive``/``revoke``
                          and ``set(lease=...)`` work; without it they raise
                          EtcdUnsupported and a TTL belongs to each key (v2).

Every method raises the errors of ``_etcd_common`` (EtcdKeyNotFound,
EtcdCompareFailed, ...) or ``EndpointUnavailable`` when the endpoint cannot
serve the request (the client then tries the next one).
"""

from __future__ import annotations

import abc


class EtcdBackend(abc.ABC):
    """Key, watch, lease and cluster operations of one etcd API on one endpoint."""

    api_version = None
    supports_directories = False
    supports_leases = False

    # -- construction ---------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def check_available(cls):
        """Raise EtcdMissingLibrary when a library this backend needs is not installed."""

    @classmethod
    @abc.abstractmethod
    def connect(cls, endpoint, timeout, ssl_context=None, username=None, password=None,
                ca_cert=None, client_cert=None, client_key=None):
        """Return a backend for ``endpoint`` (nothing is sent yet)."""

    @abc.abstractmethod
    def close(self):
        """Release the connections (and an open watch)."""

    # -- reads ------------------------------------------------------------------------

    @abc.abstractmethod
    def get(self, key, recursive=False):
        """EtcdNode of ``key``; a directory with its children (all levels with ``recursive``)."""

    @abc.abstractmethod
    def get_many(self, keys):
        """``{key: EtcdNode or None}``; directories come without children."""

    @abc.abstractmethod
    def revision(self, key):
        """The current store index (v2) or revision (v3), read through ``key``."""

    # -- writes (compare-and-swap through prev_value / prev_index / prev_exist) ---------

    @abc.abstractmethod
    def set(self, key, value, ttl=None, prev_value=None, prev_index=None, prev_exist=None, lease=None):
        """Write ``key``; EtcdEvent. ``lease`` is the id of an etcd v3 lease to put the key on
        (EtcdLockLost when that lease expired); needs ``supports_leases``."""

    @abc.abstractmethod
    def set_many(self, items, ttl=None):
        """Write ``{key: value}`` without conditions; EtcdEvents in order."""

    @abc.abstractmethod
    def write_each(self, ops):
        """Apply independent EtcdOps; per op its EtcdEvent or the EtcdKeyError it met."""

    @abc.abstractmethod
    def refresh(self, key, ttl, prev_value=None, prev_index=None):
        """Renew the TTL of ``key`` without changing its value; its EtcdNode."""

    @abc.abstractmethod
    def mkdir(self, key, ttl=None):
        """Create directory ``key`` (see ``supports_directories``); EtcdEvent."""

    @abc.abstractmethod
    def delete(self, key, recursive=False, dir=False, prev_value=None, prev_index=None):
        """Delete ``key`` (a directory with ``recursive``/``dir``); EtcdEvent."""

    # -- watches ------------------------------------------------------------------------

    @abc.abstractmethod
    def watch(self, key, recursive=False, index=None, timeout=None):
        """Wait for the next change; the list of EtcdEvents of that change.
        EtcdWatchTimeout after ``timeout``, EtcdWatchIndexCleared for lost history."""

    @abc.abstractmethod
    def close_watch(self):
        """End a watch stream left open between ``watch`` calls, if any."""

    # -- etcd v3 leases (see ``supports_leases``) ----------------------------------------

    @abc.abstractmethod
    def grant(self, ttl):
        """Grant an etcd v3 lease of ``ttl`` seconds; its id."""

    @abc.abstractmethod
    def keepalive(self, lease):
        """Renew the etcd v3 lease ``lease``; its new TTL (0 when it has expired)."""

    @abc.abstractmethod
    def lease_keys(self, lease):
        """The keys attached to the etcd v3 lease ``lease`` (a set), None when it has expired."""

    @abc.abstractmethod
    def revoke(self, lease):
        """Revoke the etcd v3 lease ``lease`` (its keys are deleted)."""

    # -- cluster ------------------------------------------------------------------------

    @abc.abstractmethod
    def members(self):
        """``(cluster_id, [member dict])``."""

    @abc.abstractmethod
    def status(self):
        """This member's id, leader, version and raft counters."""

    @abc.abstractmethod
    def health(self):
        """``(healthy, reason)`` of this member."""

    @abc.abstractmethod
    def version(self):
        """``(server_version, cluster_version)``."""

    # -- users and roles -------------------------------------------------------------------

    @abc.abstractmethod
    def access(self):
        """The users, roles and authentication switch of this API (V2Access or V3Access)."""
