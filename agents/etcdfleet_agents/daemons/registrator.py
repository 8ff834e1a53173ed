# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""registrator: the published ports of this node's Docker containers, registered in etcd.

Every port a running container publishes on the host becomes the key
``<prefix>/<service name>/<hostname>:<container name>:<exposed port>[:udp]`` holding
``<advertise ip>:<host port>`` (see services/containers.py for the naming rules,
``SERVICE_*`` labels and environment variables, internal and explicit modes).

How the keys stay right:

* Docker's event stream (start, die, stop, kill, restart, destroy, rename, health_status)
  drives registration: each event makes the agent inspect that container and write or delete
  its keys. The stream is reopened with backoff when Docker goes away; every (re)connection is
  followed by a resync, so containers started meanwhile are not missed.
* A resync (at start, after reconnecting, after an etcd failure, and every ``--resync``
  seconds) lists the running containers, reads the prefix and writes what is missing or
  different and deletes every key whose id names this host but no running container: no stale
  keys after a crash of the agent or missed events.
* Keys carry a TTL (``--ttl``) renewed every third of it without waking watchers (v2
  ``refresh``, v3 one lease kept alive for all keys). When the agent or the whole node dies,
  its keys are gone within the TTL. While Docker is unreachable the containers' state is
  unknown: the keys are not renewed and expire; the resync after Docker returns registers what
  runs again and removes what went meanwhile.
* Containers with a Docker HEALTHCHECK are registered once healthy and deregistered when they
  turn unhealthy (``--ignore-health`` registers them regardless).
* On SIGTERM the agent stops and leaves its keys to expire (an agent restart or upgrade does not
  make services flap); ``--deregister-on-stop`` deletes them instead.
* ``--once`` does one resync and exits (with ``--ttl 0`` the keys do not expire).

Settings come from the arguments or ETCDFLEET_REGISTRATOR_* variables (see ``--help``); etcd is
reached through the service store (store/, the node's ETCDFLEET_* settings).
"""

import argparse
import os
import socket
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import DEFAULT_PREFIX

from etcdfleet_agents.docker.daemon import DockerEventsDaemon
from etcdfleet_agents.docker.events import (
    RESYNC,
    STOP,
    UNREACHABLE,
    inspect_or_none,
    short_container_id,
)
from etcdfleet_agents.docker.inspect import container_from_inspect
from etcdfleet_agents.runtime import Backoff, close_quietly, env_flag, env_setting, error_text
from etcdfleet_agents.services.containers import RegistratorOptions, container_services
from etcdfleet_agents.services.options import (
    address_arg,
    detect_advertise_ip,
    prefix_arg,
    seconds_arg,
    style_arg,
    ttl_arg,
)
from etcdfleet_agents.services.sync import plan_sync
from etcdfleet_agents.store import open_store

ENV = "ETCDFLEET_REGISTRATOR_"
DEFAULT_TTL = 30
DEFAULT_RESYNC = 60


def _env(environ, name, default=None):
    return env_setting(environ, ENV, name, default)


def _env_flag(environ, name):
    return env_flag(environ, ENV, name)


def add_arguments(parser, environ=None):
    """The agent's options; defaults come from ETCDFLEET_REGISTRATOR_* (checked like arguments)."""
    environ = os.environ if environ is None else environ
    parser.add_argument("--prefix", type=prefix_arg, default=_env(environ, "PREFIX", DEFAULT_PREFIX),
                        help="key prefix of the services (default /services; env %sPREFIX)" % ENV)
    parser.add_argument("--hostname", default=_env(environ, "HOSTNAME"),
                        help="first part of every service id (default this machine's host name)")
    parser.add_argument("--advertise-ip", "--ip", dest="advertise_ip", type=address_arg,
                        default=_env(environ, "ADVERTISE_IP"),
                        help="address registered for published ports (default the address this node "
                             "uses to reach etcd)")
    parser.add_argument("--internal", action="store_true", default=_env_flag(environ, "INTERNAL"),
                        help="register the container's own IP and exposed port instead")
    parser.add_argument("--explicit", action="store_true", default=_env_flag(environ, "EXPLICIT"),
                        help="register only containers that set SERVICE_NAME (or SERVICE_<port>_NAME)")
    parser.add_argument("--ttl", type=ttl_arg, default=_env(environ, "TTL", str(DEFAULT_TTL)),
                        help="seconds the keys live without renewal; 0 for no TTL (default %d)" % DEFAULT_TTL)
    parser.add_argument("--resync", type=seconds_arg, default=_env(environ, "RESYNC", str(DEFAULT_RESYNC)),
                        help="seconds between full resyncs; 0 for only at start and after "
                             "reconnecting (default %d)" % DEFAULT_RESYNC)
    parser.add_argument("--value-style", type=style_arg, default=_env(environ, "VALUE_STYLE", "plain"),
                        help="plain: ip:port (default); json: {\"host\": ip, \"port\": port}")
    parser.add_argument("--ignore-health", action="store_true", default=_env_flag(environ, "IGNORE_HEALTH"),
                        help="register containers with a HEALTHCHECK before they report healthy")
    parser.add_argument("--deregister-on-stop", action="store_true",
                        default=_env_flag(environ, "DEREGISTER_ON_STOP"),
                        help="delete this node's keys when the agent stops cleanly (default: leave "
                             "them to expire after the TTL)")
    parser.add_argument("--deregister-host", action="store_true",
                        help="with the service stopped: delete every key of this host (its hostname in "
                             "the key) and exit, for a node leaving the cluster")
    parser.add_argument("--docker-url", default=_env(environ, "DOCKER_URL"),
                        help="Docker engine (default DOCKER_HOST or unix:///var/run/docker.sock)")
    return parser


# -- the agent -----------------------------------------------------------------------------------------

class Registrator(DockerEventsDaemon):
    """Registers the published ports of this node's Docker containers in etcd."""

    name = "registrator"

    def __init__(self, args=None, environ=None, store=None, docker_factory=None):
        super(Registrator, self).__init__(args=args, environ=environ, docker_factory=docker_factory)
        if args is None:
            args = add_arguments(argparse.ArgumentParser(), self.environ).parse_args([])
            self.args = args
        if getattr(args, "deregister_host", False):
            args.once = True
        self.store = store if store is not None else open_store(self.environ)
        self.prefix = args.prefix
        self.hostname = args.hostname or socket.gethostname()
        advertise_ip = args.advertise_ip
        if advertise_ip is None and not args.internal:
            advertise_ip = detect_advertise_ip(self.store.endpoints)
            if advertise_ip is None:
                raise ValueError("cannot find an address to advertise: set --advertise-ip")
        self.options = RegistratorOptions(hostname=self.hostname, advertise_ip=advertise_ip,
                                          internal=args.internal, explicit=args.explicit,
                                          require_healthy=not args.ignore_health)
        self.ttl = args.ttl
        self.resync_interval = args.resync
        self.style = args.value_style
        self.deregister_on_stop = args.deregister_on_stop
        self.keeper = self.store.key_keeper(self.ttl) if self.ttl else None
        self.keepalive_interval = max(0.5, self.ttl / 3.0) if self.ttl else None
        self.registered = {}     # key -> value this agent maintains
        self.by_container = {}   # container id -> {key: value}
        self.names = {}          # container id -> container name (for log lines)
        self.notes = {}          # container id -> reasons last logged for skipped ports
        self.need_resync = None

    # -- Docker ------------------------------------------------------------------------------
    def _inspect(self, cid):
        """The container's inspect document, or None when it no longer exists."""
        return inspect_or_none(self.api, cid)

    def _services(self, cid, attrs, log_skips):
        """``({key: value}, [Service], name)`` wanted for one container's inspect document."""
        if attrs is None:
            return {}, [], self.names.get(cid, short_container_id(cid))
        desc = container_from_inspect(attrs)
        found = container_services(desc, self.options)
        notes = tuple(sorted(
            ("port %d/%s: %s" % (s.port, s.proto, s.reason)) if s.port else s.reason for s in found.skipped))
        if log_skips and notes and self.notes.get(cid) != notes:
            self.log.info("container %s: not registered: %s", desc["name"], "; ".join(notes))
        self.notes[cid] = notes
        self.names[cid] = desc["name"]
        wanted = dict((s.key(self.prefix), s.value(self.style)) for s in found.services)
        return wanted, found.services, desc["name"]

    # -- the store ------------------------------------------------------------------------------
    def _write(self, key, value, current=None):
        """Write (or take over) one key; True when etcd was written."""
        if self.keeper is not None:
            return self.keeper.keep(key, value, current)
        if current is not None and current.value == value:
            return False
        self.store.put(key, value)
        return True

    def _delete(self, key):
        self.registered.pop(key, None)
        if self.keeper is not None:
            return self.keeper.delete(key)
        return self.store.delete(key)

    def _read_prefix(self):
        """``{key: entry}`` of every value below the prefix (entries have ``.value``)."""
        return self.store.read(self.prefix)

    # -- actions --------------------------------------------------------------------------------
    def handle_container(self, cid, action="event", name=None):
        """Bring one container's keys in line with its current state."""
        attrs = self._inspect(cid)
        wanted, dummy, cname = self._services(cid, attrs, log_skips=action in ("start", "restart", "unpause")
                                              or action.startswith("health_status"))
        cname = name if attrs is None and name else cname
        old = self.by_container.get(cid, {})
        others = set()
        for other_cid, keys in self.by_container.items():
            if other_cid != cid:
                others.update(keys)
        for key in sorted(set(old) - set(wanted)):
            if key in others:
                continue
            self._delete(key)
            self.log.info("deregistered %s (container %s: %s)", key, cname, action)
        for key, value in sorted(wanted.items()):
            if self.registered.get(key) != value or (self.keeper is not None and key not in self.keeper):
                self._write(key, value)
                self.registered[key] = value
                self.log.info("registered %s = %s (container %s: %s)", key, value, cname, action)
        if wanted:
            self.by_container[cid] = wanted
        else:
            self.by_container.pop(cid, None)
        if attrs is None:
            self.names.pop(cid, None)
            self.notes.pop(cid, None)

    def resync(self, reason="resync"):
        """Register every running container and delete this host's keys that match none."""
        started = time.monotonic()
        services = []
        per_container = {}
        names = {}
        for entry in self.api.containers(quiet=True):
            cid = entry.get("Id") if isinstance(entry, dict) else entry
            attrs = self._inspect(cid)
            if attrs is None:
                continue
            wanted, found, cname = self._services(cid, attrs, log_skips=True)
            names[cid] = cname
            services.extend(found)
            if wanted:
                per_container[cid] = wanted
        existing = self._read_prefix()
        plan = plan_sync(services, [(k, n.value) for k, n in existing.items()], self.hostname,
                         self.prefix, style=self.style)
        for message in plan.conflicts:
            self.log.warning("conflict: %s", message)
        writes = deletes = 0
        for key in plan.delete:
            self._delete(key)
            deletes += 1
            self.log.info("removed stale %s = %s (no running container of this host)", key,
                          existing[key].value if key in existing else "?")
        # keys this agent registered under ids it cannot recognise later (SERVICE_ID overrides)
        for key in sorted(set(self.registered) - set(plan.put) - set(plan.delete)):
            self._delete(key)
            deletes += 1
            self.log.info("deregistered %s (no running container wants it)", key)
        for key, value in plan.put.items():
            current = existing.get(key)
            if (self.registered.get(key) == value and current is not None and current.value == value
                    and (self.keeper is None or key in self.keeper)):
                continue
            wrote = self._write(key, value, current)
            self.registered[key] = value
            if key in plan.changed:
                writes += 1
                self.log.info("registered %s = %s (%s)", key, value, reason)
            elif wrote:
                self.log.debug("took over %s = %s", key, value)
        winners = set(plan.put)
        self.by_container = dict(
            (cid, dict((k, v) for k, v in keys.items() if k in winners)) for cid, keys in per_container.items())
        for cid in list(self.notes):
            if cid not in names:
                self.notes.pop(cid, None)
        self.names = names
        self.log.info("resync (%s): %d containers, %d keys, %d written, %d deleted in %.0f ms", reason,
                      len(names), len(plan.put), writes, deletes, (time.monotonic() - started) * 1000)
        return plan

    def keepalive(self):
        lost = self.keeper.keepalive()
        if lost:
            self.log.warning("re-registered %d key(s) that had expired: %s", len(lost), ", ".join(lost))
        taken = self.keeper.taken_over()
        if taken:
            # forgotten, so that a container's stop does not delete the other writer's value
            for key in taken:
                self.registered.pop(key, None)
                for keys in self.by_container.values():
                    keys.pop(key, None)
            self.log.warning("left %d key(s) another writer now holds: %s", len(taken), ", ".join(taken))
        return lost

    # -- Daemon interface -------------------------------------------------------------------------
    def run_once(self):
        if self.args.deregister_host:
            return self.deregister_host()
        self.resync("once")

    def deregister_host(self):
        """Delete every key of this host, as a resync finding no container would (Docker is
        not asked)."""
        existing = self._read_prefix()
        plan = plan_sync([], [(k, n.value) for k, n in existing.items()], self.hostname, self.prefix,
                         style=self.style)
        for key in plan.delete:
            self.store.delete(key)
            self.log.info("deregistered %s (host %s leaves)", key, self.hostname)
        if not plan.delete:
            self.log.info("no key of host %s to deregister", self.hostname)

    def serve(self):
        self.start_events()
        resync_backoff = Backoff(first=0.5, cap=10.0)
        keepalive_backoff = Backoff(first=0.5, cap=max(1.0, (self.keepalive_interval or 3) / 2))
        now = time.monotonic()
        retry_at = now
        next_keepalive = now + self.keepalive_interval if self.keeper is not None else None
        next_resync = None
        docker_away = False       # Docker unreachable: renew nothing until a resync succeeds
        while not self.stopping.is_set():
            now = time.monotonic()
            if self.need_resync and now >= retry_at:
                try:
                    plan = self.resync(self.need_resync)
                    self.ready("in step with Docker: %d container(s), %d key(s)" % (len(self.names), len(plan.put)))
                    self.need_resync = None
                    if docker_away:
                        docker_away = False
                        next_keepalive = now + self.keepalive_interval if self.keeper is not None else None
                    resync_backoff.reset()
                    next_resync = now + self.resync_interval if self.resync_interval else None
                except Exception as exc:  # pylint: disable=broad-except
                    delay = resync_backoff.next_delay()
                    retry_at = now + delay
                    self.log.warning("resync (%s) failed: %s: %s; retrying in %.1fs", self.need_resync,
                                     type(exc).__name__, error_text(exc), delay)
                    self.set_status("retrying: resync failed: %s" % error_text(exc))
            if next_keepalive is not None and now >= next_keepalive and not docker_away:
                try:
                    self.keepalive()
                    keepalive_backoff.reset()
                    next_keepalive = now + self.keepalive_interval
                except self.store.errors as exc:
                    delay = keepalive_backoff.next_delay()
                    next_keepalive = now + delay
                    self.log.warning("keepalive failed: %s: %s; retrying in %.1fs", type(exc).__name__,
                                     error_text(exc), delay)
                    self.set_status("retrying: keepalive failed: %s" % error_text(exc))
                    if not self.need_resync:
                        self.need_resync = "etcd recovered"
                        retry_at = next_keepalive
            if next_resync is not None and now >= next_resync and not self.need_resync:
                self.need_resync = "periodic"
                retry_at = now
                next_resync = None
            item = self.next_item((None if docker_away else next_keepalive, next_resync,
                                   retry_at if self.need_resync else None))
            if item is None:
                continue
            kind, payload = item
            if kind == STOP:
                break
            if kind == RESYNC:
                if not self.need_resync:
                    self.need_resync = payload
                retry_at = time.monotonic()
                continue
            if kind == UNREACHABLE:
                if not docker_away and self.keeper is not None and self.registered:
                    self.log.warning("Docker unreachable: no longer refreshing %d key(s), they expire within %ds"
                                     " unless Docker returns", len(self.registered), self.ttl)
                docker_away = True
                self.set_status("Docker unreachable: waiting for it to return")
                continue
            cid, action, name = payload
            try:
                self.handle_container(cid, action, name)
            except Exception as exc:  # pylint: disable=broad-except
                self.log.warning("container %s (%s) not handled: %s: %s; resync scheduled", name, action,
                                 type(exc).__name__, error_text(exc))
                if not self.need_resync:
                    self.need_resync = "after a failed event"
                    retry_at = time.monotonic() + resync_backoff.next_delay()

    def cleanup(self):
        self.close_events()
        keys = sorted(self.registered)
        if self.deregister_on_stop and keys:
            try:
                if self.keeper is not None:
                    self.keeper.revoke()
                else:
                    for key in keys:
                        self._delete(key)
                self.log.info("deregistered %d key(s) on stop: %s", len(keys), ", ".join(keys))
            except self.store.errors as exc:
                self.log.warning("could not deregister on stop: %s", error_text(exc))
        elif keys:
            if self.ttl:
                self.log.info("leaving %d key(s) to expire within %ds", len(keys), self.ttl)
            else:
                self.log.info("leaving %d key(s) in place (no TTL)", len(keys))
        self.registered = {}
        close_quietly(self.store)

    @classmethod
    def add_arguments(cls, parser):
        add_arguments(parser)
