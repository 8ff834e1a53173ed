# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleet: the agent and the engine of one machine, in one process (like fleetd).

Threads, each with its own etcd client:

* main: the agent's reconcile, whenever the watcher reports a registry change,
  and every ``--reconcile-interval`` seconds as a safety net;
* engine: the same for the engine, while this machine holds the engine's leadership
  (its own thread, so that placing units never waits for this machine's
  systemd calls);
* watcher: follows the registry (``watch_iter`` on the prefix) and wakes main
  and the engine on changes of jobs, unit contents, machines and the engine's leadership;
* keeper: renews the machine's registration every ``--heartbeat-interval``
  (default a quarter of ``--machine-ttl``) and takes or renews the engine's
  leadership (``lease/engine-leader``), so that slow systemd calls never delay them;
* reporter: publishes systemd's load/active/sub state of the managed units to
  ``states/<unit>/<machine>`` and the ``job-state`` heartbeat of launched units;
  it reads systemd once a second (one ``systemctl list-units`` for the managed
  units) and right after each reconcile, and writes only changes (plus TTL
  renewals), each kind in one batch.

Stopping the daemon never stops the units: on SIGTERM the machine's
registration is renewed for ``--restart-grace`` seconds so a restart or an
upgrade moves nothing; only when the whole system is shutting down is the
machine removed at once so its units fail over without waiting for the TTL.
``--drain`` (with the service stopped) removes the machine and stops and
unloads its units: the engine moves them to other machines.
"""

import argparse
import os
import socket
import threading
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdError, EtcdLockLost
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_keys import DEFAULT_PREFIX, FleetKeys
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import (
    STATE_LAUNCHED,
    Machine,
    encode_machine,
    merge_metadata,
    parse_metadata,
    short_id,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_store import FleetStore

from etcdfleet_agents import runtime
from etcdfleet_agents.cli import remote
from etcdfleet_agents.scheduling.agent import Agent
from etcdfleet_agents.scheduling.engine import Engine
from etcdfleet_agents.systemd.manager import ACTIVE_OR_STARTING, Systemd

IGNORED_JOB_FIELDS = (FleetKeys.JOB_HEARTBEAT, FleetKeys.JOB_REASON)
# A watcher more than this many changes behind (v2: one change per request) reads the registry
# again instead of replaying the backlog: a burst of submissions costs a few reads, not one
# request per change on every machine.
CATCH_UP = 64


def read_machine_id(path='/etc/machine-id'):
    """This machine's ID; ValueError (one line) when the file cannot be read or is empty."""
    try:
        with open(path, 'r', encoding='ascii') as handle:
            value = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError('cannot read the machine ID from %s: %s' % (path, exc))
    if not value:
        raise ValueError('%s is empty' % path)
    return value


def detect_ip(endpoints):
    """The local address used to reach the first etcd endpoint."""
    from urllib.parse import urlsplit
    for url in endpoints or []:
        host = urlsplit(url).hostname
        if not host:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.connect((host, 9))
                address = sock.getsockname()[0]
        except OSError:
            continue
        if address and not address.startswith('127.'):
            return address
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return ''


def relevant(keys, event):
    """Whether a registry change can alter placements or what a machine runs."""
    info = keys.classify(event.key)
    if info is None:
        return False
    if info.kind == 'job':
        return info.field not in IGNORED_JOB_FIELDS
    return info.kind in ('unit', 'machine', 'lease', 'root')


class FleetDaemon(runtime.Daemon):
    """Runs this machine's fleet agent and a candidate fleet engine."""

    name = 'fleet'

    def __init__(self, args=None, environ=None, client_factory=None, systemd=None):
        super(FleetDaemon, self).__init__(args=args, environ=environ)
        args = self.args
        if args.drain:
            args.once = True
        self.client_factory = client_factory or (
            lambda **overrides: runtime.client_from_environ(self.environ, **overrides))
        self.prefix = args.prefix
        self.store = FleetStore(self.client_factory(), self.prefix)
        self.keys = self.store.keys
        machine_id = args.machine_id or read_machine_id(args.machine_id_file)
        ip = args.public_ip or detect_ip(self.store.client.endpoints)
        self.static_metadata = parse_metadata(args.metadata, strict=True)
        self.machine = Machine(id=machine_id, ip=ip, metadata=self.static_metadata)
        self.machine_value = encode_machine(self.machine)
        self.ttl = int(args.machine_ttl)
        self.heartbeat_interval = args.heartbeat_interval or max(0.25, self.ttl / 4.0)
        self.systemd = systemd or Systemd(unit_dir=args.unit_dir, link_dir=args.link_dir)
        self.agent = Agent(self.store, self.machine, self.systemd, log=self.log) if args.agent else None
        self.engine = None
        if args.engine:
            self.engine = Engine(FleetStore(self.client_factory(), self.prefix), machine_id,
                                 gc_grace=args.gc_grace, log=self.log, outage_grace=args.outage_grace,
                                 machine_ttl=self.ttl)
        self.engine_lease = None
        self.wake = threading.Event()
        self.engine_wake = threading.Event()
        self.report_now = threading.Event()
        self.threads = []
        self.revision = None
        self.published = {}
        self.beats = {}
        self.command_prefix = remote.request_key(self.keys, self.machine.id, '')
        self.output_prefix = remote.output_key(self.keys, '')

    def _answer(self, key, value):
        store = FleetStore(self.client_factory(), self.prefix)
        try:
            if remote.answer_request(store, key, value, self.machine.id):
                self.log.info('answered %s', key.rsplit('/', 1)[-1])
        except EtcdError as exc:
            self.log.warning('cannot answer %s: %s', key, exc)
        finally:
            store.client.close()

    @classmethod
    def add_arguments(cls, parser):
        env = os.environ.get
        parser.add_argument('--prefix', default=env('ETCDFLEET_FLEET_PREFIX', DEFAULT_PREFIX),
                            help='registry key prefix (default %(default)s)')
        parser.add_argument('--machine-id', default='', help='machine ID (default: /etc/machine-id)')
        parser.add_argument('--machine-id-file', default='/etc/machine-id', help=argparse.SUPPRESS)
        parser.add_argument('--public-ip', default=env('ETCDFLEET_FLEET_PUBLIC_IP', ''),
                            help='IP address announced for this machine (default: the one reaching etcd)')
        parser.add_argument('--metadata', default=env('ETCDFLEET_FLEET_METADATA', ''),
                            help='machine metadata, "key=value,key2=value2"')
        parser.add_argument('--machine-ttl', type=int, default=int(env('ETCDFLEET_FLEET_MACHINE_TTL', '3')),
                            help='seconds the machine stays registered without renewal (default %(default)s)')
        parser.add_argument('--heartbeat-interval', type=float, default=0.0,
                            help='seconds between renewals (default: a quarter of the machine TTL)')
        parser.add_argument('--state-ttl', type=int, default=30,
                            help='TTL of the published unit states and job heartbeats (default %(default)s)')
        parser.add_argument('--state-interval', type=float, default=1.0,
                            help='seconds between reads of systemd unit states (default %(default)s)')
        parser.add_argument('--restart-grace', type=int, default=30,
                            help='seconds the registration is kept when the daemon stops (default %(default)s)')
        parser.add_argument('--reconcile-interval', type=float, default=30.0,
                            help='full reconcile at least this often, in seconds (default %(default)s)')
        parser.add_argument('--gc-grace', type=float, default=30.0,
                            help='seconds unused unit contents are kept before removal (default %(default)s)')
        parser.add_argument('--outage-grace', type=float, default=30.0,
                            help='after this machine lost etcd, seconds the machines not registered '
                                 'again keep their units (default %(default)s)')
        parser.add_argument('--unit-dir', default='/run/fleet/units', help='where unit files are written')
        parser.add_argument('--link-dir', default='/run/systemd/system', help=argparse.SUPPRESS)
        parser.add_argument('--no-engine', dest='engine', action='store_false',
                            help='never act as the engine on this machine')
        parser.add_argument('--no-agent', dest='agent', action='store_false',
                            help='run no units on this machine (engine only)')
        parser.add_argument('--drain', action='store_true',
                            help='remove this machine and stop and unload its units, then exit '
                                 '(stop the fleet service first)')

    # -- one pass ------------------------------------------------------------------------

    def register(self):
        if self.agent is None:
            return False
        return self.store.refresh_machine(self.machine, self.ttl, self.machine_value)

    def reconcile(self):
        """Engine (when leading) then agent, on one registry read unless the engine changed it."""
        snap = self.store.snapshot()
        self.revision = snap.revision
        if self.engine is not None:
            self.engine.observe(snap)
        if self.reconcile_engine(snap):
            snap = self.store.snapshot()
        self.reconcile_agent(snap)
        return snap

    def reconcile_engine(self, snap=None):
        """One engine pass when this machine holds the engine's leadership; the number of writes."""
        if self.engine is None:
            return 0
        if self.engine_lease is None or not self.engine_lease.held:
            if snap is None and self.engine.in_grace() and self.engine.online():
                # not leading: follow the machines anyway, to lead with what they did since the outage
                # (not while etcd is away: that read would only fail, once a second)
                self.engine.observe(self.engine.store.snapshot())
            return 0
        return self.engine.reconcile(snap or self.engine.store.snapshot())

    def reconcile_agent(self, snap=None):
        if self.agent is None:
            return
        snap = snap or self.store.snapshot()
        republish = self.follow_metadata(snap)
        if (republish or self.machine.id not in snap.machines) and not self.stopping.is_set():
            self.register()
        if self.agent.reconcile(snap):
            self.report_now.set()

    def follow_metadata(self, snap):
        """Take in the metadata set for this machine at run time (``drained`` among them) so
        that its object, which fleetctl 1.0 reads, shows them; whether they changed."""
        metadata = merge_metadata(self.static_metadata, snap.machine_metadata.get(self.machine.id))
        if metadata == dict(self.machine.metadata):
            return False
        machine = Machine(id=self.machine.id, ip=self.machine.ip, metadata=metadata)
        self.machine, self.machine_value = machine, encode_machine(machine)
        if self.agent is not None:
            self.agent.machine = machine
        self.log.info('machine %s metadata now %s', short_id(machine.id), metadata or '-')
        return True

    def run_once(self):
        if self.args.drain:
            return self.drain()
        self.register()
        if self.engine is not None:
            self.engine_lease = self.store.engine_lease(self.machine.id, self.ttl)
            self.engine_lease.acquire()
        self.reconcile()
        if self.engine is not None and self.engine_lease.held:
            self.reconcile()
        self.report_states()
        return 0

    def drain(self):
        self.store.remove_machine(self.machine.id)
        local = sorted(self.systemd.local_units())
        if local:
            self.systemd.stop(local, block=True)
            for name in local:
                self.systemd.remove(name)
                self.store.clear_heartbeat(name, self.machine.id)
                self.store.clear_state(name, self.machine.id)
                self.log.info('drained %s', name)
            self.systemd.daemon_reload()
            self.systemd.reset_failed(local)
        self.log.info('machine %s drained', short_id(self.machine.id))
        return 0

    # -- threads ---------------------------------------------------------------------------

    def _thread(self, name, target):
        thread = threading.Thread(target=self._guard, args=(name, target), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _guard(self, name, target):
        backoff = runtime.Backoff(first=0.2, cap=5.0)
        while not self.stopping.is_set():
            try:
                target()
                backoff.reset()
            except Exception as exc:  # pylint: disable=broad-except
                delay = backoff.next_delay()
                self.log.warning('%s failed: %s: %s; retrying in %.1fs', name, type(exc).__name__, exc, delay)
                self.sleep(delay)

    def _watcher(self):
        client = self.client_factory()
        try:
            index = (self.revision + 1) if self.revision else None
            self.wake.set()
            for event in client.watch_iter(self.keys.root, recursive=True, index=index,
                                           stop=self.stopping, reconnect_delay=1.0,
                                           catch_up=CATCH_UP):
                if event is None:
                    continue
                if event.action == 'resync':
                    # the changes skipped may include fleetctl requests to this machine
                    for node in (event.node.leaves() if event.node is not None else ()):
                        self._request(node.key, node.value)
                elif event.key.startswith(self.command_prefix):
                    if event.action == 'create':
                        self._request(event.key, event.value)
                    continue
                if event.key.startswith(self.output_prefix):
                    continue
                if event.action == 'resync' or relevant(self.keys, event):
                    self.wake.set()
                    self.engine_wake.set()
        finally:
            client.close()

    def _request(self, key, value):
        """Answer a fleetctl request (status, journal) to this machine, in its own thread."""
        if key.startswith(self.command_prefix) and value and self.agent is not None:
            threading.Thread(target=self._answer, args=(key, value), daemon=True).start()

    def _keeper(self):
        # Renewals must not wait on one slow member longer than the TTL allows: a short request
        # timeout, and the next attempt goes to the next member.
        store = FleetStore(self.client_factory(timeout=max(0.5, self.ttl / 3.0)), self.prefix)
        lease = store.engine_lease(self.machine.id, self.ttl) if self.engine is not None else None
        self.engine_lease = lease
        was_ok = True
        backoff = runtime.Backoff(first=0.2, cap=max(1.0, self.ttl / 2.0))
        try:
            while not self.stopping.is_set():
                try:
                    if self.agent is not None and store.refresh_machine(self.machine, self.ttl, self.machine_value):
                        self.log.info('registered machine %s (%s) with TTL %ds', short_id(self.machine.id),
                                      self.machine.ip or '-', self.ttl)
                        self.wake.set()
                    if lease is not None:
                        if lease.held:
                            try:
                                lease.refresh()
                            except EtcdLockLost:
                                self.log.warning('lost the engine lease')
                        elif lease.acquire():
                            self.log.info('acquired the engine lease')
                            self.engine_wake.set()
                    if not was_ok:
                        self.log.info('etcd reachable again')
                    was_ok = True
                    self.ready('machine %s registered' % short_id(self.machine.id) if self.agent is not None
                               else 'engine running')
                    backoff.reset()
                    if self.engine is not None:
                        self.engine.connection_ok()
                except EtcdError as exc:
                    if self.engine is not None:
                        self.engine.connection_lost()
                    delay = backoff.next_delay()
                    if was_ok:
                        self.log.warning('cannot renew the registration: %s; retrying with backoff up to %.1fs',
                                         exc, backoff.cap)
                    was_ok = False
                    self.set_status('retrying: cannot renew the registration: %s' % runtime.error_text(exc))
                    self.pause(delay, 'keeper')
                    continue
                self.pause(self.heartbeat_interval, 'keeper')
        finally:
            self.idle('keeper')
            store.client.close()

    def report_states(self, store=None):
        """Publish systemd's view of the managed units (changes only, plus renewals).

        New and changed records, first heartbeats and removals each go to etcd in one batch.
        """
        if self.agent is None:
            return
        store = store or self.store
        managed = self.agent.managed_units()
        now = time.monotonic()
        renew = max(1.0, self.args.state_ttl / 3.0)
        states = self.systemd.states(sorted(managed)) if managed else {}
        records = self.agent.state_records(states)
        changed = []
        for name, record in sorted(records.items()):
            last = self.published.get(name)
            if last is None or last[0] != record:
                changed.append(record)
            elif now - last[1] >= renew:
                store.refresh_state(record, self.args.state_ttl)
                self.published[name] = (record, now)
        if changed:
            store.report_states(changed, self.args.state_ttl)
            for record in changed:
                self.published[record.name] = (record, now)
        gone = sorted(name for name in self.published if name not in managed)
        if gone:
            store.clear_states(gone, self.machine.id)
            for name in gone:
                del self.published[name]
        started = self.agent.started
        first_beats = []
        ended = []
        for name, (target_state, _hash, is_global) in sorted(managed.items()):
            record = records.get(name)
            beating = (target_state == STATE_LAUNCHED and not is_global and name in started
                       and record is not None and record.active_state in ACTIVE_OR_STARTING)
            if beating:
                last = self.beats.get(name)
                if last is None:
                    first_beats.append(name)
                elif now - last >= renew:
                    store.heartbeat(name, self.machine.id, self.args.state_ttl)
                    self.beats[name] = now
            elif name in self.beats:
                ended.append(name)
        if first_beats:
            store.start_heartbeats(first_beats, self.machine.id, self.args.state_ttl)
            for name in first_beats:
                self.beats[name] = now
        if ended:
            store.clear_heartbeats(ended, self.machine.id)
            for name in ended:
                del self.beats[name]
        for name in list(self.beats):
            if name not in managed:
                del self.beats[name]

    def _reporter(self):
        store = FleetStore(self.client_factory(), self.prefix)
        try:
            while not self.stopping.is_set():
                self.report_states(store)
                self.report_now.wait(self.args.state_interval)
                self.report_now.clear()
        finally:
            store.client.close()

    def _engine_loop(self):
        while not self.stopping.is_set():
            self.engine_wake.wait(min(1.0, self.args.reconcile_interval)
                                  if self.engine.in_grace() or self.engine.holding()
                                  else self.args.reconcile_interval)
            if self.stopping.is_set():
                break
            self.engine_wake.clear()
            self.reconcile_engine()

    def stop(self, *_ignored):
        super(FleetDaemon, self).stop()
        self.wake.set()
        self.engine_wake.set()
        self.report_now.set()

    # -- serve -------------------------------------------------------------------------------

    def serve(self):
        if not self.threads:
            if self.agent is not None:
                self.register()
                self.log.info('machine %s (%s) metadata %s, TTL %ds', short_id(self.machine.id),
                              self.machine.ip or '-', dict(self.machine.metadata) or '-', self.ttl)
            self._thread('keeper', self._keeper)
            self.reconcile()
            self._thread('watcher', self._watcher)
            if self.engine is not None:
                self._thread('engine', self._engine_loop)
            if self.agent is not None:
                self._thread('reporter', self._reporter)
        while not self.stopping.is_set():
            self.pause(self.args.reconcile_interval, event=self.wake)
            if self.stopping.is_set():
                break
            self.wake.clear()
            self.reconcile_agent()

    def cleanup(self):
        for thread in self.threads:
            thread.join(timeout=5)
        if self.args.once or self.args.drain:
            return
        try:
            if self.engine_lease is not None and self.engine_lease.held:
                self.engine_lease.release()
            if self.agent is None:
                return
            if self.systemd.system_state() == 'stopping':
                self.store.remove_machine(self.machine.id)
                self.log.info('system shutting down: machine %s removed', short_id(self.machine.id))
            else:
                self.store.register_machine(self.machine, self.args.restart_grace)
                self.log.info('units left running; registration kept for %ds', self.args.restart_grace)
        except EtcdError as exc:
            self.log.warning('cannot update the registration on exit: %s', exc)
