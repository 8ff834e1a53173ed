# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetctl: drive the fleet registry from a shell, with fleet's commands and output.

    fleetctl list-machines | list-units | list-unit-files   [-l|--full] [--no-legend] [--fields=a,b]
    fleetctl submit|load|start [--replace] [--no-block] [--block-attempts=N] UNIT...
    fleetctl stop|unload [--no-block] [--block-attempts=N] UNIT...
    fleetctl destroy UNIT...     fleetctl cat UNIT
    fleetctl status UNIT...      fleetctl journal [--lines=N] [-f] UNIT
    fleetctl ssh [-A] [--ssh-port=N] [--machine=M|--unit=U] [UNIT|MACHINE] [COMMAND...]

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
from etcdfleet_agents.cli import remote, ssh
from etcdfleet_agents.cli.tables import (
    list_machines_table,
    list_unit_files_table,
    list_units_table,
    machine_legend,
    unit_file_rows,
    unit_reason,
)

# What fleet 1.0 says of each command: ``Error <verb> units: ...`` when loading or starting
# fails, ``Successfully <past> units [...]`` after stop and unload.
ERROR_VERBS = {'load': 'loading', 'start': 'starting'}
DONE_VERBS = {'stop': 'stopped', 'unload': 'unloaded'}


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


def warn_if_different(arg, name, job):
    """fleet's warning when the local unit file (or the template of an instance) differs."""
    shown = arg if os.path.basename(arg) == name else os.path.join(os.path.dirname(arg), name)
    path = local_file_for(arg, name)
    kind = 'unit file'
    if path is None:
        info = parse_unit_name(name)
        template = os.path.join(os.path.dirname(arg), info.template) if info is not None and info.is_instance else ''
        if not template or not os.path.isfile(template):
            return
        path, kind = template, 'template unit file'
    if parse_unit(read_file(path)).hash != job.unit_hash:
        err('WARNING: Unit %s in registry differs from local %s %s. Add --replace to override.'
            % (name, kind, shown))


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
                if not self.args.replace:
                    warn_if_different(arg, name, job)
                    continue
                path = local_file_for(arg, name)
                if path is None:
                    continue
                unit = parse_unit(read_file(path))
                old, new = self.store.replace_unit(name, unit)
                if old != new:
                    out('Unit %s replaced (%s -> %s)' % (name, short_hash(old), short_hash(new)))
                else:
                    out('Found same Unit(%s) in Registry, nothing to do' % name)
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

    def existing_units(self):
        """The units named on the command line that are in the registry (fleet ignores the others)."""
        snap = self.store.snapshot()
        names = []
        for arg in self.args.units:
            name = mangle_unit_name(arg)
            job = snap.jobs.get(name)
            if name not in names and job is not None and job.exists:
                names.append(name)
        return names

    def _transition(self, command, goal):
        if command in ERROR_VERBS:
            names = self.ensure_units()
        else:
            names = self.existing_units()
            if not names:
                err('Units not found in registry')
                return 0
        changed = []
        template = None
        for name in names:
            info = parse_unit_name(name)
            if command in ERROR_VERBS and info is not None and info.is_template:
                template = Failure('Error %s units: cannot activate template "%s"' % (ERROR_VERBS[command], name))
                break
            changed.append(name)
        before = self.store.snapshot()
        try:
            if changed:
                self.store.commands(changed, command)
        except FleetStateError as exc:
            raise Failure(str(exc))
        if template is not None:
            raise template
        pending = []
        for name in changed:
            job = before.jobs.get(name)
            if job is not None and job.is_global:
                out('Triggered global unit %s %s' % (name, command))
            elif command in ERROR_VERBS or before.current_state(name) != goal:
                pending.append(name)
        if self.args.no_block:
            for name in pending:
                out('Triggered unit %s %s' % (name, command))
            code = 0
        else:
            code = self.wait(pending, goal)
        if command in DONE_VERBS:
            if code:
                err('Failed to %s units [%s].' % (command, ' '.join(pending)))
            else:
                err('Successfully %s units [%s].' % (DONE_VERBS[command], ' '.join(pending)))
        return code

    def wait(self, pending, goal):
        attempts = self.args.block_attempts
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
                        err(unit_reason(name, job.reason))
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
        names = self.existing_units()
        if not names:
            err('Units not found in registry')
            return 0
        for name in names:
            if self.store.destroy_unit(name):
                out('Destroyed %s' % name)
        return 0

    # -- inspecting --------------------------------------------------------------------------

    def ssh(self):
        """Become the ssh client, logged in to the machine of a unit or a machine ID prefix."""
        args = self.args
        if args.machine and args.unit:
            raise Failure('Both machine and unit flags provided, please specify only one.')
        words = ([args.target] if args.target is not None else []) + list(args.remote_command)
        snap = self.store.snapshot()
        try:
            if args.machine:
                address = ssh.machine_address(snap, args.machine)
            elif args.unit:
                address = ssh.unit_address(snap, args.unit)
            elif not words:
                raise ssh.TargetNotFound('one machine or unit must be provided')
            else:
                address = ssh.find_address(snap, words.pop(0))
        except ssh.TargetNotFound as exc:
            raise Failure('Unable to proceed: %s' % exc)
        if not address:
            raise Failure('Could not determine address of machine.')
        if words and words[0] == '--':
            words.pop(0)
        try:
            argv = ssh.ssh_argv(address, user=args.ssh_username, port=args.ssh_port,
                                forward_agent=args.forward_agent,
                                strict_host_key_checking=args.strict_host_key_checking,
                                known_hosts_file=args.known_hosts_file, timeout=args.ssh_timeout,
                                command=words)
        except ValueError as exc:
            raise Failure('Unable to proceed: %s' % exc)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            raise Failure('Failed running %s: %s' % (argv[0], exc))
        return 0

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


# fleet 1.0's TLS flag, the etcd client's keyword argument it sets, and its help
TLS_FLAGS = (('ca-file', 'ca_cert', 'CA certificate that signed the etcd members\' certificates'),
             ('cert-file', 'client_cert', 'client certificate for etcd'),
             ('key-file', 'client_key', 'key of the client certificate'))


def build_parser():
    parser = argparse.ArgumentParser(prog='fleetctl', description='Drive the fleet registry.')
    parser.add_argument('--endpoint', default=os.environ.get('FLEETCTL_ENDPOINT', ''),
                        help='etcd endpoints, comma separated (default: the node settings)')
    parser.add_argument('--etcd-key-prefix', default=os.environ.get('FLEETCTL_ETCD_KEY_PREFIX', DEFAULT_PREFIX))
    # fleet 1.0's TLS flags (and their FLEETCTL_* variables); empty: the node settings' files
    for flag, setting, helptext in TLS_FLAGS:
        parser.add_argument('--' + flag, dest=setting, help=helptext,
                            default=os.environ.get('FLEETCTL_' + flag.upper().replace('-', '_'), ''))
    parser.add_argument('--driver', default='etcd', choices=['etcd'], help='only etcd is supported')
    parser.add_argument('--request-timeout', type=float, default=10.0)
    ssh_options(parser, defaults=True)
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
    remote_shell = sub.add_parser('ssh', help='ssh to a machine, or to the machine running a unit')
    remote_shell.add_argument('-A', '--forward-agent', action='store_true', help='forward the ssh agent')
    remote_shell.add_argument('--ssh-port', type=int, default=ssh.DEFAULT_PORT, help='sshd port on the machine')
    remote_shell.add_argument('-m', '--machine', default='', help='machine ID or unique prefix')
    remote_shell.add_argument('-u', '--unit', default='', help='unit whose machine to reach')
    ssh_options(remote_shell, defaults=False)
    remote_shell.add_argument('target', nargs='?', metavar='UNIT|MACHINE')
    remote_shell.add_argument('remote_command', nargs=argparse.REMAINDER, metavar='COMMAND')
    return parser


def parse_bool(value):
    """fleet's boolean flag values (``--strict-host-key-checking=false``)."""
    lowered = str(value).lower()
    if lowered in ('1', 't', 'true', 'yes'):
        return True
    if lowered in ('0', 'f', 'false', 'no'):
        return False
    raise argparse.ArgumentTypeError('invalid boolean value %r' % value)


def ssh_options(parser, defaults):
    """fleet's global ssh flags; accepted before the command and after ``ssh`` as fleet does."""
    def default(value):
        return value if defaults else argparse.SUPPRESS
    parser.add_argument('--ssh-username', default=default(os.environ.get('FLEETCTL_SSH_USERNAME', '')),
                        help="user to log in as (default: ssh's own choice)")
    parser.add_argument('--strict-host-key-checking', type=parse_bool, nargs='?', const=True,
                        default=default(True), help='verify host keys (default true)')
    parser.add_argument('--known-hosts-file', default=default(''),
                        help="known hosts file (default: ssh's own)")
    parser.add_argument('--ssh-timeout', type=float, default=default(10.0),
                        help='seconds allowed for the ssh connection to open')


def main(argv=None, environ=None):
    args = build_parser().parse_args(argv)
    overrides = {}
    if args.endpoint:
        overrides['endpoints'] = [e.strip() for e in args.endpoint.split(',') if e.strip()]
    overrides.update((setting, getattr(args, setting)) for _flag, setting, _help in TLS_FLAGS if getattr(args, setting))
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
