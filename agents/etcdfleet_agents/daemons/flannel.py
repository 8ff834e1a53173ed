# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""flannel: this host's subnet of the overlay network, leased in etcd on flannel's own layout.

What flanneld does, on its keys and values (``plugins/module_utils/flannel_network.py``), so a
real flanneld with the same backend and etcd API shares the network:

* waits for the network config at ``<prefix>/config`` (written by the role, never here); a config
  without ``Backend`` is run with vxlan, saying that a real flanneld would run udp on it;
* vxlan: makes the device ``flannel.<VNI>`` on the public interface (learning off; an existing
  device with the right settings is kept, and with it its MAC, the lease's VtepMAC);
* leases a subnet (``FlannelStore.acquire``: the lease carrying this host's PublicIP is kept, else
  the subnet of the subnet file or of its copy on disk (``--state-file``: a host down for longer
  than its lease's TTL gets its subnet back when still free, and Docker's bridge with it), else a
  random free one, written create-only) and renews it
  before its TTL runs out; a lease deleted or taken over is replaced by a new one, said in the log;
* writes ``/run/flannel/subnet.env`` (Docker's ``bip`` and ``mtu`` come from it) and keeps the
  forward and (``--ip-masq``) masquerade rules of ``network/iptables.py``;
* follows ``<prefix>/subnets`` with a watch: each peer's lease becomes a route, a neighbour and an
  FDB entry (vxlan) or a direct route (host-gw); a lease that expires or is deleted takes its
  entries away. A lease that cannot be read is skipped with one warning.

An etcd outage changes nothing in the kernel: the routes stay as they were and the daemon catches
up when etcd is back. Stopping leaves the lease, device and rules in place, as flanneld does, so a
restart moves no packet elsewhere.

    python3 -m etcdfleet_agents.flannel --ip-masq
"""

import argparse
import ipaddress
import os
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.flannel_network import (
    DEFAULT_PREFIX,
    LEASE_TTL,
    RENEW_MARGIN,
    SUBNET_ENV_PATH,
    FlannelDataError,
    FlannelError,
    mtu,
    parse_lease,
    subnet_env,
)
from ansible_collections.etcdfleet.cluster.plugins.module_utils.flannel_store import (
    FlannelStore,
    LeaseLost,
    read_leases,
)

from etcdfleet_agents.network.iptables import Iptables, IptablesError, overlay_rules
from etcdfleet_agents.network.links import Netlink, NetlinkError, NetworkError, Vxlan
from etcdfleet_agents.runtime import (
    Backoff,
    Daemon,
    SettingsError,
    client_from_environ,
    close_quietly,
    error_text,
    write_atomic,
)
from etcdfleet_agents.services.options import address_arg, detect_advertise_ip, prefix_arg, seconds_arg
from etcdfleet_agents.store.etcd_mirror import PrefixMirror

# The subnet file's copy on disk (/run is gone after a reboot, and with it the subnet file).
STATE_PATH = "/var/lib/etcdfleet/flannel/subnet.env"
# How often the packet filter rules are checked (a restarted Docker may have dropped a jump).
RULES_CHECK = 30.0
# A new peer lease reaches the kernel within this (the watch's burst window).
DEBOUNCE = 0.05
MAX_DELAY = 0.25


def lease_ttl_arg(text):
    value = seconds_arg(text)
    if value < 2:
        raise argparse.ArgumentTypeError("a lease needs a TTL of 2 seconds or more, got %d" % value)
    return value


def add_arguments(parser):
    parser.add_argument("--prefix", type=prefix_arg, default=DEFAULT_PREFIX,
                        help="flannel's key prefix (default %s)" % DEFAULT_PREFIX)
    parser.add_argument("--public-ip", type=address_arg,
                        help="this host's address for the other hosts (default the address it uses to reach etcd)")
    parser.add_argument("--iface", help="interface of the public address (default the one holding it)")
    parser.add_argument("--ip-masq", action="store_true",
                        help="masquerade traffic leaving the overlay (Docker then runs with ip-masq false)")
    parser.add_argument("--subnet-file", default=SUBNET_ENV_PATH,
                        help="where the subnet is written for Docker (default %s)" % SUBNET_ENV_PATH)
    parser.add_argument("--state-file", default=STATE_PATH,
                        help="a copy of the subnet file that outlives a reboot, whose subnet is asked for again when "
                             "the lease has expired meanwhile (default %s)" % STATE_PATH)
    parser.add_argument("--lease-ttl", type=lease_ttl_arg, default=LEASE_TTL,
                        help="seconds a lease lives without renewal (default %d)" % LEASE_TTL)
    parser.add_argument("--release", action="store_true",
                        help="with the service stopped: give this host's subnet back (delete its lease) "
                             "and exit, for a host leaving the network")
    return parser


def renew_after(ttl):
    """Seconds after a write of a lease with ``ttl`` at which it is renewed: an hour before it
    ends (flanneld), or half way for short TTLs."""
    return ttl - min(RENEW_MARGIN, ttl / 2.0)


def read_subnet_file(path):
    """The subnet (network) named by FLANNEL_SUBNET in ``path``; None when there is none."""
    try:
        with open(path) as handle:
            for line in handle:
                name, _sep, value = line.strip().partition("=")
                if name == "FLANNEL_SUBNET":
                    return ipaddress.IPv4Network(value, strict=False)
    except (OSError, ValueError):
        return None
    return None


def write_file(path, text):
    """Write ``text`` to ``path`` (atomically) unless it already holds it; True when written."""
    try:
        with open(path) as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o755, exist_ok=True)
    write_atomic(path, text)
    return True


class Flannel(Daemon):
    """This host's subnet of the overlay network, leased in etcd, and the routes to every other."""

    name = "flannel"

    def __init__(self, args=None, environ=None, client=None, netlink=None, iptables=None):
        super(Flannel, self).__init__(args=args, environ=environ)
        if getattr(self.args, "release", False):
            self.args.once = True
        self.client = client if client is not None else client_from_environ(self.environ)
        self.store = FlannelStore(self.client, args.prefix)
        self.public_ip = args.public_ip or detect_advertise_ip(self.client.endpoints)
        if not self.public_ip:
            raise SettingsError("--public-ip: no address of this host reaches etcd; name one")
        self.netlink = netlink if netlink is not None else Netlink()
        self.iptables = iptables if iptables is not None else Iptables()
        self.config = None
        self.public_link = None
        self.device = None        # the vxlan Link
        self.mtu = None
        self.lease = None
        self.renew_at = None
        self.rules_at = None
        self.mirror = None
        self.watch_ended = True   # no watch thread still reads from the client
        self._seen_own = False    # the watch has shown our lease since we wrote it
        self._warned = {}         # key -> the warning last logged for it
        self._said = set()        # one-time messages already logged

    # -- once ----------------------------------------------------------------------------------
    def say_once(self, message, level="warning"):
        if message not in self._said:
            self._said.add(message)
            getattr(self.log, level)("%s", message)

    def read_config(self):
        """The network config, or None while there is none. One without Backend runs vxlan,
        said once."""
        config = self.store.config(default_backend="vxlan")
        if config is not None and config.backend_defaulted:
            self.say_once("the network config at %s names no Backend: running the vxlan backend; a real flanneld "
                          "would run udp on it and could not share this network" % self.store.config_key)
        return config

    def wait_for_config(self):
        backoff = Backoff(first=0.5, cap=5.0)
        while not self.stopping.is_set():
            try:
                config = self.read_config()
                if config is not None:
                    return config
                why = "no network config at %s yet" % self.store.config_key
            except (FlannelError, ValueError) as exc:
                why = "the network config at %s cannot be used: %s" % (self.store.config_key, error_text(exc))
            self.say_once("waiting: %s" % why, level="warning" if "cannot" in why else "info")
            self.set_status("waiting: %s" % why)
            self.pause(backoff.next_delay())
        return None

    # -- this host -----------------------------------------------------------------------------
    def setup_backend(self):
        """The public link and (vxlan) the device; returns the lease's BackendData."""
        config = self.config
        if self.args.iface:
            link = self.netlink.link(self.args.iface)
            if link is None:
                raise SettingsError("--iface: there is no interface %s" % self.args.iface)
        else:
            link = self.netlink.link_of_address(self.public_ip)
            if link is None:
                raise SettingsError("--public-ip: no interface holds %s; name one with --iface" % self.public_ip)
        self.public_link = link
        self.mtu = mtu(config.backend_type, link.mtu)
        if config.backend_type != "vxlan":
            return None
        if config.direct_routing:
            self.say_once("Backend.DirectRouting is not applied here: every peer is reached through %s"
                          % config.device, level="info")
        wanted = Vxlan(vni=config.vni, local=self.public_ip, link=link.index, port=config.port, gbp=config.gbp)
        self.device, actions = self.netlink.ensure_vxlan(config.device, wanted, self.mtu)
        for action in actions:
            self.log.info("%s", action)
        return {"VtepMAC": self.device.mac}

    def take_lease(self, reason):
        backend_data = self.setup_backend()
        # the subnet this host had, even when its lease expired while it was down (Docker's bridge
        # is still on it)
        previous = read_subnet_file(self.args.subnet_file) or read_subnet_file(self.args.state_file)
        lease = self.store.acquire(self.public_ip, self.config.backend_type, backend_data,
                                   ttl=self.args.lease_ttl, config=self.config, previous=previous)
        kept = self.lease is not None and lease.subnet == self.lease.subnet
        self.log.info("leased %s for %s (%s)%s", lease.subnet, self.public_ip, reason,
                      "" if self.lease is None or kept else "; it was %s" % self.lease.subnet)
        if self.lease is not None and not kept:
            self.log.warning("this host's subnet changed from %s to %s: Docker's bridge must follow (%s)",
                             self.lease.subnet, lease.subnet, self.args.subnet_file)
        self.lease = lease
        self._seen_own = False
        self.renew_at = time.monotonic() + renew_after(self.args.lease_ttl)
        self.apply_host()

    def apply_host(self):
        """The device's address, the subnet file and the packet filter rules of our lease."""
        if self.device is not None:
            own = ipaddress.IPv4Network("%s/32" % self.lease.subnet.network_address)
            for action in self.netlink.ensure_only_address(self.device.index, own):
                self.log.info("%s on %s", action, self.device.name)
        text = subnet_env(self.config, self.lease.subnet, self.mtu, self.args.ip_masq)
        for path in (self.args.subnet_file, self.args.state_file):
            if write_file(path, text):
                self.log.info("wrote %s: %s", path, " ".join(text.split()))
        self.iptables.forget()
        self.check_rules()

    def check_rules(self):
        try:
            for action in overlay_rules(self.iptables, self.config.network, self.lease.subnet, self.args.ip_masq):
                self.log.info("%s", action)
        except IptablesError as exc:
            self.say_once("packet filter rules not in place: %s" % error_text(exc))
        self.rules_at = time.monotonic() + RULES_CHECK

    def renew(self):
        try:
            self.lease = self.store.renew(self.lease, ttl=self.args.lease_ttl)
            self.renew_at = time.monotonic() + renew_after(self.args.lease_ttl)
            self.log.info("renewed the lease %s for %ds", self.lease.subnet, self.args.lease_ttl)
        except LeaseLost as exc:
            self.log.warning("%s: taking a new lease", exc)
            self.lost_lease()

    def lost_lease(self):
        old = self.lease
        self.take_lease("the lease %s was lost" % old.subnet)

    # -- peers ---------------------------------------------------------------------------------
    def own_key(self):
        return self.store.lease_key(self.lease.subnet)

    def lease_gone(self, values):
        """Why our lease is no longer ours in the watched ``values``, or None."""
        key = self.own_key()
        value = values.get(key)
        if value is None:
            return "deleted or expired" if self._seen_own else None
        self._seen_own = True
        try:
            current = parse_lease(self.lease.subnet, value)
        except FlannelDataError as exc:
            return "overwritten: %s" % error_text(exc)
        if current.public_ip != self.public_ip:
            return "taken by %s" % current.public_ip
        return None

    def apply_peers(self, values):
        """Bring the kernel in line with the leases in ``values`` (``{key: value}``)."""
        gone = self.lease_gone(values)
        if gone is not None:
            self.log.warning("the lease %s of this host was %s: taking a new one", self.lease.subnet, gone)
            self.lost_lease()
        leases = read_leases(self.store.subnets_key, ((key, value, None) for key, value in values.items()),
                             config=self.config)
        warnings = {}
        for message in leases.warnings:
            warnings[message.split(":", 1)[0]] = message
        peers = {}
        for subnet, lease in sorted(leases.items()):
            key = self.store.lease_key(subnet)
            if subnet == self.lease.subnet or lease.public_ip == self.public_ip:
                continue
            if lease.backend_type != self.config.backend_type:
                warnings[key] = ("%s: skipped: %s lease of %s, this network runs %s"
                                 % (key, lease.backend_type, lease.public_ip, self.config.backend_type))
                continue
            peers[subnet] = lease
        for key, message in sorted(warnings.items()):
            if self._warned.get(key) != message:
                self.log.warning("%s", message)
        self._warned = warnings
        try:
            if self.device is not None:
                actions = self.netlink.vxlan_peers(self.device, self.config.network, dict(
                    (subnet, (lease.vtep_mac, lease.public_ip)) for subnet, lease in peers.items()))
            else:
                actions = self.netlink.direct_routes(self.public_link, self.config.network, dict(
                    (subnet, lease.public_ip) for subnet, lease in peers.items()))
        except (NetlinkError, NetworkError, OSError) as exc:
            raise NetworkError("could not apply %d peer lease(s): %s" % (len(peers), error_text(exc))) from exc
        for action in actions:
            self.log.info("%s", action)
        return peers

    def status_line(self, peers):
        return "lease %s, %d peer(s)" % (self.lease.subnet, len(peers))

    # -- Daemon interface ----------------------------------------------------------------------
    def run_once(self):
        if self.args.release:
            freed = self.store.release(self.public_ip)
            self.log.info("released %s", ", ".join(str(s) for s in freed) if freed else "nothing: no lease of %s"
                          % self.public_ip)
            return
        self.config = self.read_config()
        if self.config is None:
            raise SettingsError("no network config at %s" % self.store.config_key)
        self.take_lease("once")
        mirror = PrefixMirror(self.client, self.store.subnets_key)
        self.apply_peers(mirror.load())

    def serve(self):
        config = self.wait_for_config()
        if config is None:
            return
        self.config = config
        self.take_lease("start" if self.lease is None else "reconnected")
        mirror = PrefixMirror(self.client, self.store.subnets_key)
        self.mirror = mirror
        try:
            peers = self.apply_peers(mirror.load())
            mirror.start()
            self.ready(self.status_line(peers))
            while not self.stopping.is_set():
                self.alive()
                now = time.monotonic()
                timeout = max(0.0, min(self.tick, self.renew_at - now, self.rules_at - now))
                changes = mirror.wait(DEBOUNCE, MAX_DELAY, timeout=timeout)
                if changes is None:
                    break
                now = time.monotonic()
                if now >= self.renew_at:
                    self.renew()
                    changes = True
                if changes:
                    peers = self.apply_peers(mirror.values)
                    self.set_status(self.status_line(peers))
                if now >= self.rules_at:
                    self.check_rules()
        finally:
            self.watch_ended = mirror.close()
            self.mirror = None

    def stop(self, *ignored):
        super(Flannel, self).stop(*ignored)
        mirror = self.mirror
        if mirror is not None:
            mirror.interrupt()

    def cleanup(self):
        close_quietly(self.netlink)
        # A watch still in its long read would hold the close until the read returns (up to its idle
        # timeout, longer than systemd waits for a stop); the process ending closes the connection.
        if self.watch_ended:
            close_quietly(self.client)

    @classmethod
    def add_arguments(cls, parser):
        add_arguments(parser)
