# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetctl: drive the fleet registry from a shell, with fleet's commands and output.

    fleetctl list-machines | list-units | list-unit-files   [-l|--full] [--no-legend] [--fields=a,b]
    fleetctl submit|load|start [--replace] [--no-block] [--block-attempts=N] UNIT...
    fleetctl stop|unload [--no-block] [--block-attempts=N] UNIT...
    fleetctl destroy UNIT...     fleetctl cat UNIT
    fleetctl status UNIT...      fleetctl journal [--lines=N] [-f] UNIT

UNIT is a unit file path (``units/web.service``), a unit name, or an instance
of a template (``kappa-test@3.service``, ``apache@1``: ``.service`` is added).
etcd is reached with the node's settings (/etc/etcdfleet/etcd.env, read by the
/usr/bin/fleetctl wrapper) unless ``--endpoint`` is given.

``status`` and ``journal`` run ``systemctl status`` / ``journalctl`` on the
machine the unit runs on: directly when that is this machine, otherwise the
fleet agent of that machine runs the command and returns its output through
etcd (``command/`` keys, answered within ``--request-timeout`` seconds).
"""

import argparse
import os
import sys
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdError
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_keys import DEFAULT_PREFIX
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import (
    STATE_INACTIVE,
    STATE_LAUNCHED,
    STATE_LOADED,
    FleetStateError,
    Machine,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_store import (
    ContentMismatch,
    FleetStore,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_names import (
    mangle_unit_name,
    parse_unit_name,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import UnitError, parse_unit, short_hash

from etcdfleet_agents import runtime
from etcdfleet_agents.cli import remote
from etcdfleet_agents.cli.tables import (
    list_machines_table,
    list_unit_files_table,
    list_units_table,
    machine_legend,
    unit_file_rows,
)


class Failure(Exception):
    """An error to print (without traceback) before exiting with status 1."""


def out(text=''):
    sys.stdout.write(text + '\n')
    sys.stdout.flush()


def err(text):
    sys.stderr.write(text + '\n')
    sys.stderr.flush()


# -- remote commands (answered by the fleet agent) -------------------------------------------

# -- helpers ------------------------------------------------------------------------------------

def local_machine_id():
    try:
        with open('/etc/machine-id', 'r', encoding='ascii') as handle:
            return handle.read().strip()
    except OSError:
        return ''


def read_file(path):
    with open(path, 'r', encoding='utf-8') as handle:
        return handle.read()


def find_contents(store, arg, name, snap):
    """Contents for a unit to be created: the file, else the template (registry, then file)."""
    for path in (arg, os.path.join(os.path.dirname(arg), name)):
        if os.path.isfile(path):
            return parse_unit(read_file(path))
    info = parse_unit_name(name)
    if info is not None and info.is_instance:
        template = snap.jobs.get(info.template)
        if template is not None and template.unit is not None:
            return template.unit
        path = os.path.join(os.path.dirname(arg), info.template)
        if os.path.isfile(path):
            return parse_unit(read_file(path))
        raise Failure('Unable to find unit file or template file for %s' % name)
    raise Failure('Unable to find unit file for %s: no such file %s' % (name, arg))


def local_file_for(arg, name):
    for path in (arg, os.path.join(os.path.dirname(arg), name)):
        if os.path.isfile(path):
            return path
    return None


def legend_of(snap, machine_id, full=False):
    machine = snap.machines.get(machine_id) or Machine(id=machine_id)
    return machine_legend(machine, full)


class Fleetctl(object):
    def __init__(self, args, store):
        self.args = args
        self.store = store

    # -- listing -----------------------------------------------------------------------

    def list_machines(self):
        snap = self.store.snapshot()
        sys.stdout.write(list_machines_table(snap.machines.values(), fields=self.args.fields,
                                             full=self.args.full, legend=not self.args.no_legend))
        return 0

    def list_units(self):
        snap = self.store.snapshot()
        records = []
        for record in snap.state_records():
            job = snap.jobs.get(record.name)
            if job is None:
                continue
            records.append(record)
        sys.stdout.write(list_units_table(records, snap.machines, fields=self.args.fields,
                                          full=self.args.full, legend=not self.args.no_legend))
        return 0

    def list_unit_files(self):
        snap = self.store.snapshot()
        sys.stdout.write(list_unit_files_table(unit_file_rows(snap), snap.machines, fields=self.args.fields,
                                               full=self.args.full, legend=not self.args.no_legend))
        return 0

    # -- creating and changing -----------------------------------------------------------

    def ensure_units(self):
        """Create (or replace) the units named on the command line; their names in order."""
        snap = self.store.snapshot()
        names = []
        fresh = []
        for arg in self.args.units:
            name = mangle_unit_name(arg)
            if name in names:
                continue
            names.append(name)
            job = snap.jobs.get(name)
            if job is not None and job.exists:
                if self.args.replace:
                    path = local_file_for(arg, name)
                    if path is None:
                        continue
                    unit = parse_unit(read_file(path))
                    old, new = self.store.replace_unit(name, unit)
                    if old != new:
                        out('Unit %s replaced (%s -> %s)' % (name, short_hash(old), short_hash(new)))
                continue
            fresh.append((name, find_contents(self.store, arg, name, snap)))
        if fresh:
            try:
                created, dummy = self.store.create_units(fresh)
            except ContentMismatch as exc:
                raise Failure(str(exc))
            for name, dummy in fresh:
                if name in created:
                    out('Unit %s inactive' % name)
        return names

    def submit(self):
        self.ensure_units()
        return 0

    def _transition(self, command, goal):
        names = self.ensure_units() if command in ('load', 'start') else \
            [mangle_unit_name(a) for a in self.args.units]
        changed = []
        template = None
        for name in names:
            info = parse_unit_name(name)
            if command in ('load', 'start') and info is not None and info.is_template:
                template = Failure('Unable to %s %s: templates cannot be %s; start an instance such as %s@1%s'
                                   % (command, name, 'loaded' if command == 'load' else 'started',
                                      info.prefix, info.suffix))
                break
            changed.append(name)
        try:
            if changed:
                self.store.commands(changed, command)
        except FleetStateError as exc:
            raise Failure(str(exc))
        if template is not None:
            raise template
        if self.args.no_block:
            return 0
        return self.wait(changed, goal)

    def wait(self, names, goal):
        attempts = self.args.block_attempts
        snap = self.store.snapshot()
        globals_ = [n for n in names if snap.jobs.get(n) is not None and snap.jobs[n].is_global]
        verb = self.args.command
        for name in globals_:
            out('Triggered global unit %s %s' % (name, verb))
        pending = [n for n in names if n not in globals_]
        reasons_since = {}
        attempt = 0
        code = 0
        while pending:
            snap = self.store.snapshot()
            still = []
            for name in pending:
                job = snap.jobs.get(name)
                if job is None:
                    err('Unit %s does not exist.' % name)
                    code = 1
                    continue
                state = snap.current_state(name)
                if state == goal:
                    if goal == STATE_INACTIVE:
                        out('Unit %s inactive' % name)
                    else:
                        out('Unit %s %s on %s' % (name, goal, legend_of(snap, job.target)))
                    continue
                if goal != STATE_INACTIVE and not job.target and job.reason:
                    since = reasons_since.setdefault(name, time.monotonic())
                    if time.monotonic() - since >= 2.0:
                        err('Unit %s cannot be placed: %s' % (name, job.reason))
                        code = 1
                        continue
                else:
                    reasons_since.pop(name, None)
                still.append(name)
            pending = still
            if not pending:
                break
            attempt += 1
            if attempts and attempt >= attempts:
                for name in pending:
                    job = snap.jobs.get(name)
                    detail = ' (%s)' % job.reason if job is not None and job.reason else ''
                    err('Error waiting for unit %s to be %s: still %s%s' % (
                        name, goal, snap.current_state(name), detail))
                return 1
            self.store.wait_for(pending, lambda s, n: False, timeout=0.5)
        return code

    def load(self):
        return self._transition('load', STATE_LOADED)

    def start(self):
        return self._transition('start', STATE_LAUNCHED)

    def stop(self):
        return self._transition('stop', STATE_LOADED)

    def unload(self):
        return self._transition('unload', STATE_INACTIVE)

    def destroy(self):
        for arg in self.args.units:
            name = mangle_unit_name(arg)
            self.store.destroy_unit(name)
            out('Destroyed %s' % name)
        return 0

    # -- inspecting --------------------------------------------------------------------------

    def cat(self):
        name = mangle_unit_name(self.args.unit)
        job = self.store.job(name)
        if job is None:
            raise Failure('Unit %s not found' % name)
        if job.unit is None:
            raise Failure('Unit %s: %s' % (name, 'contents %s missing from the registry' % short_hash(job.unit_hash)))
        sys.stdout.write(job.unit.text)
        return 0

    def _machines_of(self, name, snap):
        job = snap.jobs.get(name)
        if job is None or not job.exists:
            raise Failure('Unit %s does not exist.' % name)
        if job.is_global:
            machines = snap.global_machines(name)
            if not machines:
                raise Failure('Unit %s does not appear to be running on any machine.' % name)
            return machines
        if not job.target:
            raise Failure('Unit %s does not appear to be running.' % name)
        return [job.target]

    def _run_on(self, machine_id, kind, unit, lines):
        if machine_id == local_machine_id():
            return remote.run_command(kind, unit, lines)
        return remote.remote(self.store, machine_id, kind, unit, lines, self.args.request_timeout)

    def status(self):
        snap = self.store.snapshot()
        code = 0
        for index, arg in enumerate(self.args.units):
            name = mangle_unit_name(arg)
            for machine_id in self._machines_of(name, snap):
                if index:
                    out()
                rc, text = self._run_on(machine_id, 'status', name, 10)
                sys.stdout.write(text)
                code = code or (rc if rc != 3 else 0)
        return code

    def journal(self):
        name = mangle_unit_name(self.args.unit)
        snap = self.store.snapshot()
        code = 0
        for machine_id in self._machines_of(name, snap):
            if self.args.follow:
                if machine_id != local_machine_id():
                    raise Failure('journal -f works on the machine running the unit (%s)'
                                  % legend_of(snap, machine_id))
                argv = ['journalctl', '--unit', name, '--no-pager', '-n', str(self.args.lines), '-f']
                os.execvp(argv[0], argv)
            rc, text = self._run_on(machine_id, 'journal', name, self.args.lines)
            sys.stdout.write(text)
            code = code or rc
        return code


def build_parser():
    parser = argparse.ArgumentParser(prog='fleetctl', description='Drive the fleet registry.')
    parser.add_argument('--endpoint', default=os.environ.get('FLEETCTL_ENDPOINT', ''),
                        help='etcd endpoints, comma separated (default: the node settings)')
    parser.add_argument('--etcd-key-prefix', default=os.environ.get('FLEETCTL_ETCD_KEY_PREFIX', DEFAULT_PREFIX))
    parser.add_argument('--driver', default='etcd', choices=['etcd'], help='only etcd is supported')
    parser.add_argument('--request-timeout', type=float, default=10.0)
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True

    def table(name, helptext):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument('-l', '--full', action='store_true', help='do not shorten IDs and hashes')
        cmd.add_argument('--no-legend', action='store_true', help='no header line')
        cmd.add_argument('--fields', default=None, help='columns to show, comma separated')
        return cmd

    table('list-machines', 'machines in the cluster')
    table('list-units', 'units as the machines report them')
    table('list-unit-files', 'units in the registry with desired and current state')

    def changing(name, helptext, replace=True):
        cmd = sub.add_parser(name, help=helptext)
        if replace:
            cmd.add_argument('--replace', action='store_true', help='replace units whose file changed')
        if name != 'submit':
            cmd.add_argument('--no-block', action='store_true', help='do not wait for the units')
            cmd.add_argument('--block-attempts', type=int, default=0,
                             help='give up after N checks (half a second apart); 0 waits for ever')
        cmd.add_argument('units', nargs='+', metavar='UNIT')
        return cmd

    changing('submit', 'add units to the registry')
    changing('load', 'submit and load units on machines')
    changing('start', 'submit, load and start units')
    changing('stop', 'stop units (they stay loaded)', replace=False)
    changing('unload', 'unload units (they stay submitted)', replace=False)
    destroy = sub.add_parser('destroy', help='remove units from the registry')
    destroy.add_argument('units', nargs='+', metavar='UNIT')
    cat = sub.add_parser('cat', help='print a unit file as stored')
    cat.add_argument('unit')
    status = sub.add_parser('status', help='systemctl status of units on their machines')
    status.add_argument('units', nargs='+', metavar='UNIT')
    journal = sub.add_parser('journal', help='journal of a unit on its machine')
    journal.add_argument('--lines', '-n', type=int, default=10)
    journal.add_argument('-f', '--follow', action='store_true')
    journal.add_argument('unit')
    return parser


def main(argv=None, environ=None):
    args = build_parser().parse_args(argv)
    overrides = {}
    if args.endpoint:
        overrides['endpoints'] = [e.strip() for e in args.endpoint.split(',') if e.strip()]
    try:
        client = runtime.client_from_environ(runtime.node_environ(environ), **overrides)
        store = FleetStore(client, args.etcd_key_prefix)
        handler = getattr(Fleetctl(args, store), args.command.replace('-', '_'))
        return handler()
    except (Failure, remote.RemoteTimeout, EtcdError, UnitError, ValueError) as exc:
        err('Error: %s' % exc if not isinstance(exc, (Failure, remote.RemoteTimeout)) else str(exc))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    raise SystemExit(main())
