# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The announcer: one container's published port announced in etcd while it runs (a sidekick).

Writes ``<prefix>/<service>/<id>`` = ``{"host": <ip>, "port": <host port>}`` (``--value-style
plain``: ``ip:port``) for the port ``--port`` of the container ``--container``, as the
ambassadors and docker-discover read it. Run it as the sidekick of the service's unit
(``BindsTo=``/``After=`` the unit, fleet ``MachineOf=`` it): it lives and dies with the service.

* The published port is read from Docker every time the container starts (Docker's event stream,
  filtered on that container, reopened with backoff when Docker goes away, each (re)connection
  followed by a fresh look), so a restart on another host port is announced at once.
* The key lives ``--ttl`` seconds and is renewed every third of it without waking watchers
  (the store's lease; etcd: v2 refresh, v3 lease keepalive); when the machine dies the key expires.
  When etcd was unreachable for longer than the TTL, the key is written again.
* When the container stops (or its port is no longer published) the key is withdrawn; on SIGTERM
  (the service stopped, BindsTo) too. Withdrawing is a compare-and-delete (v2) or a lease revoke
  (v3): a key another announcer has written since (the service moved) is left alone.

    python3 -m etcdfleet_agents.announce --service redis-A --container redis.service --port 6379
"""

import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import (
    DEFAULT_PREFIX,
    ServiceDataError,
    encode_value,
    service_key,
)

from etcdfleet_agents.docker.daemon import DockerEventsDaemon
from etcdfleet_agents.docker.events import (
    CONTAINER,
    RESYNC,
    STOP,
    inspect_or_none,
)
from etcdfleet_agents.docker.inspect import container_from_inspect
from etcdfleet_agents.runtime import Backoff, close_quietly, error_text
from etcdfleet_agents.services.containers import published_backend
from etcdfleet_agents.services.options import (
    address_arg,
    detect_advertise_ip,
    port_arg,
    prefix_arg,
    style_arg,
    ttl_arg,
)
from etcdfleet_agents.store import open_store

DEFAULT_TTL = 10


def add_arguments(parser):
    parser.add_argument("--service", required=True, help="service name (the directory under the prefix)")
    parser.add_argument("--container", required=True, help="name (or id) of the container to announce")
    parser.add_argument("--port", type=port_arg, required=True, help="the container's port (as exposed inside it)")
    parser.add_argument("--proto", choices=("tcp", "udp", "sctp"), default="tcp", help="protocol of the port")
    parser.add_argument("--id", help="last key segment (default the container name)")
    parser.add_argument("--prefix", type=prefix_arg, default=DEFAULT_PREFIX, help="services prefix (default /services)")
    parser.add_argument("--ttl", type=ttl_arg, default=DEFAULT_TTL,
                        help="seconds the key lives without renewal; 0 for no TTL (default %d)" % DEFAULT_TTL)
    parser.add_argument("--advertise-ip", "--ip", dest="advertise_ip", type=address_arg,
                        help="address announced when the port is published on every address (default the "
                             "address this node uses to reach etcd)")
    parser.add_argument("--value-style", type=style_arg, default="json",
                        help="json: {\"host\": ip, \"port\": port} (default); plain: ip:port")
    parser.add_argument("--docker-url", help="Docker engine (default DOCKER_HOST or unix:///var/run/docker.sock)")
    return parser


class Announcer(DockerEventsDaemon):
    """Announces one container's published port in etcd while the container runs."""

    name = "announce"

    def __init__(self, args=None, environ=None, store=None, docker_factory=None):
        super(Announcer, self).__init__(args=args, environ=environ, docker_factory=docker_factory)
        self.store = store if store is not None else open_store(self.environ)
        self.container = args.container
        self.event_filters = {"container": [self.container]}
        self.key = service_key(args.service, args.id or args.container.lstrip("/"), args.prefix)
        self.port = args.port
        self.proto = args.proto
        self.style = args.value_style
        self.advertise_ip = args.advertise_ip or detect_advertise_ip(self.store.endpoints)
        self.ttl = args.ttl
        self.keeper = self.store.key_keeper(self.ttl) if self.ttl else None
        self.keepalive_interval = max(0.5, self.ttl / 3.0) if self.ttl else None
        self.value = None         # the value announced, None when nothing is
        self._why_not = None      # last reason logged for announcing nothing
        self._yielded = False     # another writer took the key: leave it until the container starts

    # -- what to announce ---------------------------------------------------------------------
    def wanted(self):
        """``(value, None)`` to announce, or ``(None, reason)`` when there is nothing to announce."""
        attrs = inspect_or_none(self.api, self.container)
        if attrs is None:
            return None, "container %s does not exist" % self.container
        container = container_from_inspect(attrs)
        if not container["running"]:
            return None, "container %s is not running" % self.container
        try:
            backend = published_backend(container, self.port, self.proto, self.advertise_ip)
            return encode_value(backend.host, backend.port, self.style), None
        except (ValueError, ServiceDataError) as exc:
            return None, str(exc)

    def _write(self, value):
        if self.keeper is not None:
            self.keeper.put(self.key, value)
        else:
            self.store.put(self.key, value)

    def _withdraw(self):
        if self.keeper is not None:
            self.keeper.revoke()
        elif self.value is not None:
            try:
                self.store.delete(self.key, prev_value=self.value)
            except self.store.errors:
                pass

    def announce(self, reason):
        """Bring the key in line with the container; returns the value announced (or None)."""
        value, why = self.wanted()
        if value is None:
            if self.value is not None:
                self._withdraw()
                self.log.info("withdrew %s (%s; %s)", self.key, why, reason)
            elif why != self._why_not:
                self.log.info("nothing to announce for %s: %s (%s)", self.key, why, reason)
            self.value = None
            self._why_not = why
            return None
        self._why_not = None
        if self._yielded:
            return None
        if value != self.value or (self.keeper is not None and self.key not in self.keeper):
            self._write(value)
            self.log.info("announced %s = %s (%s)", self.key, value, reason)
            self.value = value
        return value

    def keepalive(self):
        lost = self.keeper.keepalive()
        if lost:
            self.log.warning("announced %s again: it had expired or been deleted", ", ".join(lost))
        for key in self.keeper.taken_over():
            self.log.warning("left %s alone: another writer holds it now (announced again when container %s"
                             " starts)", key, self.container)
            self.value = None
            self._yielded = True
        return lost

    # -- Daemon interface ---------------------------------------------------------------------
    def run_once(self):
        self.announce("once")

    def serve(self):
        self.start_events()
        backoff = Backoff(first=0.5, cap=max(1.0, (self.keepalive_interval or 3) / 2))
        pending = None            # reason of an announce still to do (after a failure)
        retry_at = None
        next_keepalive = None
        while not self.stopping.is_set():
            now = time.monotonic()
            if pending and now >= retry_at:
                try:
                    self.announce(pending)
                    pending = None
                    backoff.reset()
                    self.ready("announcing %s" % self.key if self.value is not None else "nothing to announce")
                except Exception as exc:  # pylint: disable=broad-except
                    retry_at = now + backoff.next_delay()
                    self.log.warning("announcing %s failed (%s): %s: %s; retrying in %.1fs", self.key, pending,
                                     type(exc).__name__, error_text(exc), retry_at - now)
                    self.set_status("retrying: %s" % error_text(exc))
            if self.keeper is not None and self.value is not None:
                if next_keepalive is None:
                    next_keepalive = now + self.keepalive_interval
                elif now >= next_keepalive:
                    try:
                        self.keepalive()
                        next_keepalive = now + self.keepalive_interval
                    except self.store.errors as exc:
                        next_keepalive = now + backoff.next_delay()
                        self.log.warning("keepalive of %s failed: %s: %s; retrying in %.1fs", self.key,
                                         type(exc).__name__, error_text(exc), next_keepalive - now)
            else:
                next_keepalive = None
            item = self.next_item((next_keepalive, retry_at if pending else None))
            if item is None:
                continue
            kind, payload = item
            if kind == STOP:
                break
            if kind == RESYNC:
                pending, retry_at = payload, time.monotonic()
            elif kind == CONTAINER:
                if payload[1] == "start":
                    self._yielded = False
                pending, retry_at = "container %s" % payload[1], time.monotonic()

    def cleanup(self):
        self.close_events()
        if self.value is not None:
            try:
                self._withdraw()
                self.log.info("withdrew %s on stop", self.key)
            except self.store.errors as exc:
                self.log.warning("could not withdraw %s on stop (it expires within %ds): %s", self.key,
                                 self.ttl, error_text(exc))
        self.value = None
        close_quietly(self.store)

    @classmethod
    def add_arguments(cls, parser):
        add_arguments(parser)
