# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Glue between the etcd client layer and Ansible modules.

Only modules import this file (node daemons use ``etcd.py`` directly).
"""

from __future__ import annotations

import copy

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    CONNECTION_ARGUMENT_SPEC,
    PYTHON_ETCD_TRACEBACK,
    EtcdCompareFailed,
    EtcdConnectionError,
    EtcdError,
    EtcdKeyNotFound,
    EtcdMissingLibrary,
    client_from_params,
    validate_ttl,
)


def etcd_argument_spec(**options):
    """The shared connection options plus the module's own ``options``."""
    spec = copy.deepcopy(CONNECTION_ARGUMENT_SPEC)
    spec.update(options)
    return spec


def fail_from_error(module, exc, **result):
    """Turn an EtcdError into ``fail_json`` with a clear message (never a traceback)."""
    if isinstance(exc, EtcdMissingLibrary):
        msg = missing_required_lib(exc.library, reason=exc.reason)
        msg += ' Alternatively use api_version=v3, which needs no extra library.'
        module.fail_json(msg=msg, exception=PYTHON_ETCD_TRACEBACK, **result)
    extra = {'error_type': type(exc).__name__}
    if isinstance(exc, EtcdCompareFailed):
        extra['expected'] = exc.expected
        extra['actual'] = exc.actual
    if isinstance(exc, EtcdConnectionError):
        extra['endpoints_tried'] = exc.endpoints
    extra.update(result)
    module.fail_json(msg=str(exc), **extra)


def connect(module, **overrides):
    """Build the client from the module's connection options or fail the module."""
    try:
        return client_from_params(module.params, **overrides)
    except EtcdError as exc:
        fail_from_error(module, exc)


def check_ttl(module, name='ttl'):
    """Validate a TTL option: a positive number of whole seconds."""
    try:
        return validate_ttl(module.params.get(name), name=name)
    except EtcdError as exc:
        module.fail_json(msg=str(exc))


def get_or_none(client, key, recursive=False):
    try:
        return client.get(key, recursive=recursive)
    except EtcdKeyNotFound:
        return None
