# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``fleetctl status`` / ``journal`` of a unit on another machine, through the registry.

fleetctl writes a request under ``command/<machine>/<id>`` (kind, unit, lines); the fleet daemon
of that machine runs ``systemctl status`` or ``journalctl`` for the unit (validated, never a
shell), deletes the request and writes the output under ``command-output/<id>`` with a TTL;
fleetctl reads it and deletes it. Both sides are here: ``remote`` (fleetctl) and
``answer_request`` (the daemon).
"""

import json
import subprocess
import time
import uuid

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import (
    EtcdError,
    EtcdKeyNotFound,
    EtcdWatchTimeout,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import short_id
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_names import validate_unit_name
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import UnitError

COMMAND_DIR = 'command'
OUTPUT_DIR = 'command-output'
REMOTE_COMMANDS = ('status', 'journal')


class RemoteTimeout(Exception):
    """The machine did not answer in time (its fleet service is not running, or is stuck)."""


def command_argv(kind, unit, lines=10):
    """The command ``status``/``journal`` runs for ``unit`` (validated, never a shell)."""
    validate_unit_name(unit)
    if kind == 'status':
        return ['systemctl', 'status', '-l', '--no-pager', unit]
    if kind == 'journal':
        return ['journalctl', '--unit', unit, '--no-pager', '-n', str(int(lines))]
    raise ValueError('unknown command %r' % kind)


def run_command(kind, unit, lines=10, timeout=30):
    """Run a status/journal command here; ``(exit_code, output)``."""
    argv = command_argv(kind, unit, lines)
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, '%s failed: %s\n' % (' '.join(argv), exc)
    return proc.returncode, proc.stdout


def request_key(keys, machine_id, request_id):
    return '%s/%s/%s/%s' % (keys.prefix, COMMAND_DIR, machine_id, request_id)


def output_key(keys, request_id):
    return '%s/%s/%s' % (keys.prefix, OUTPUT_DIR, request_id)


def answer_request(store, key, value, machine_id):
    """Run one request found under ``command/<machine_id>/`` and store its output (agent side)."""
    request_id = key.rstrip('/').rsplit('/', 1)[-1]
    try:
        data = json.loads(value)
        kind = data['kind']
        unit = data['unit']
        lines = int(data.get('lines', 10))
        if kind not in REMOTE_COMMANDS:
            raise ValueError('unknown command %r' % kind)
        code, text = run_command(kind, unit, lines)
    except (ValueError, KeyError, TypeError, UnitError) as exc:
        code, text = 1, 'invalid request: %s\n' % exc
    try:
        store.client.delete(key, prev_value=value)
    except EtcdError:
        return False
    store.client.set(output_key(store.keys, request_id), json.dumps({'code': code, 'output': text}), ttl=120)
    return True


def remote(store, machine_id, kind, unit, lines, timeout):
    request_id = uuid.uuid4().hex
    key = request_key(store.keys, machine_id, request_id)
    okey = output_key(store.keys, request_id)
    store.client.set(key, json.dumps({'kind': kind, 'unit': unit, 'lines': lines}), ttl=int(timeout) + 5)
    deadline = time.monotonic() + timeout
    index = None
    while True:
        try:
            node = store.client.get(okey)
            data = json.loads(node.value)
            try:
                store.client.delete(okey)
            except EtcdError:
                pass
            return int(data.get('code', 1)), data.get('output', '')
        except EtcdKeyNotFound as exc:
            index = (exc.revision + 1) if exc.revision else index
        left = deadline - time.monotonic()
        if left <= 0:
            try:
                store.client.delete(key)
            except EtcdError:
                pass
            raise RemoteTimeout('Error running remote command: machine %s did not answer within %ss '
                                '(is its fleet service running?)' % (short_id(machine_id), timeout))
        try:
            store.client.watch(okey, index=index, timeout=min(left, 1.0))
        except (EtcdWatchTimeout, EtcdError):
            pass
