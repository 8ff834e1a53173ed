# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Links, addresses, routes, neighbours and FDB entries through netlink (pyroute2).

``Netlink`` owns one rtnetlink socket. What flannel's vxlan backend keeps per peer lease
(``vxlan_peers``): a route ``<subnet> via <subnet address> dev flannel.<VNI> onlink``, a permanent
neighbour ``<subnet address> lladdr <peer VtepMAC>`` and an FDB entry ``<peer VtepMAC> dst
<peer PublicIP> self permanent``. The host-gw backend keeps a route ``<subnet> via <PublicIP>``
per peer instead (``direct_routes``). Routes this module adds carry the protocol number
``ROUTE_PROTO``, so that the ones it owns are told apart from everybody else's.
"""

import ipaddress
import socket
from typing import NamedTuple, Optional

try:
    from pyroute2 import IPRoute, NetlinkError
except ImportError:  # pragma: no cover - reported when the daemon starts
    IPRoute = None
    NetlinkError = OSError

# rtm_protocol of the routes this module owns (a number no routing daemon in iproute2's
# rt_protos table uses)
ROUTE_PROTO = 125
MAIN_TABLE = 254
RTNH_F_ONLINK = 4
NUD_PERMANENT = 0x80
NUD_NOARP = 0x40
NTF_SELF = 0x02
AF_BRIDGE = 7
ENOENT = 2
ESRCH = 3
EEXIST = 17


class NetworkError(RuntimeError):
    """The kernel refused a change, or a link is not what it must be."""


class Vxlan(NamedTuple):
    """A vxlan device's settings: ``vni``, ``local`` (the PublicIP), ``link`` (the index of the
    public interface), ``port``, ``gbp``."""

    vni: int
    local: str
    link: int
    port: int
    gbp: bool = False


class Link(NamedTuple):
    name: str
    index: int
    mtu: int
    mac: Optional[str]


def _attr(msg, name, default=None):
    value = msg.get_attr(name)
    return default if value is None else value


def _network(address, prefixlen):
    return ipaddress.IPv4Network("%s/%d" % (address, prefixlen), strict=False)


class Netlink(object):
    """The kernel's links and tables, through one pyroute2 ``IPRoute``."""

    def __init__(self, ipr=None):
        if ipr is None:
            if IPRoute is None:
                raise RuntimeError("the Python library pyroute2 is not installed (Debian: python3-pyroute2)")
            ipr = IPRoute()
        self.ipr = ipr

    def close(self):
        self.ipr.close()

    # -- links ------------------------------------------------------------------------------
    def link(self, name=None, index=None):
        """The :class:`Link` named ``name`` (or of ``index``), None when there is none."""
        if index is None:
            found = self.ipr.link_lookup(ifname=name)
            if not found:
                return None
            index = found[0]
        try:
            msg = self.ipr.get_links(index)[0]
        except NetlinkError as exc:
            if exc.code in (ENOENT, 19):  # ENODEV
                return None
            raise
        return Link(_attr(msg, "IFLA_IFNAME"), msg["index"], _attr(msg, "IFLA_MTU", 1500),
                    _attr(msg, "IFLA_ADDRESS"))

    def link_of_address(self, address):
        """The :class:`Link` holding the IPv4 ``address``, None when no link holds it."""
        for msg in self.ipr.get_addr(family=socket.AF_INET):
            if _attr(msg, "IFA_ADDRESS") == address or _attr(msg, "IFA_LOCAL") == address:
                return self.link(index=msg["index"])
        return None

    def vxlan_settings(self, name):
        """The :class:`Vxlan` of the existing device ``name``; None when there is none, False when
        ``name`` is a link of another kind."""
        index = self.ipr.link_lookup(ifname=name)
        if not index:
            return None
        msg = self.ipr.get_links(index[0])[0]
        info = msg.get_attr("IFLA_LINKINFO")
        if info is None or info.get_attr("IFLA_INFO_KIND") != "vxlan":
            return False
        data = info.get_attr("IFLA_INFO_DATA")
        return Vxlan(vni=_attr(data, "IFLA_VXLAN_ID", 0), local=_attr(data, "IFLA_VXLAN_LOCAL", ""),
                     link=_attr(data, "IFLA_VXLAN_LINK", 0), port=_attr(data, "IFLA_VXLAN_PORT", 0),
                     gbp=data.get_attr("IFLA_VXLAN_GBP") is not None)

    def ensure_vxlan(self, name, wanted, mtu):
        """The vxlan device ``name`` with the settings ``wanted`` (:class:`Vxlan`), up, with
        learning off: kept when it has them (its MAC stays, so the lease keeps its VtepMAC),
        made again otherwise. Returns ``(Link, actions)``."""
        actions = []
        current = self.vxlan_settings(name)
        if current is not None and current != wanted:
            index = self.ipr.link_lookup(ifname=name)[0]
            self.ipr.link("del", index=index)
            actions.append("removed %s: it was %s, not %s" % (name, _describe(current), _describe(wanted)))
            current = None
        if current is None:
            extra = {"vxlan_gbp": True} if wanted.gbp else {}
            self.ipr.link("add", ifname=name, kind="vxlan", vxlan_id=wanted.vni, vxlan_local=wanted.local,
                          vxlan_link=wanted.link, vxlan_port=wanted.port, vxlan_learning=0, **extra)
            actions.append("created %s (%s)" % (name, _describe(wanted)))
        link = self.link(name)
        if link.mtu != mtu:
            self.ipr.link("set", index=link.index, mtu=mtu)
            actions.append("set the MTU of %s to %d" % (name, mtu))
        msg = self.ipr.get_links(link.index)[0]
        if not msg["flags"] & 1:  # IFF_UP
            self.ipr.link("set", index=link.index, state="up")
            actions.append("brought %s up" % name)
        return self.link(name), actions

    def delete_link(self, name):
        """Remove the link ``name`` when it exists; True when it did."""
        index = self.ipr.link_lookup(ifname=name)
        if not index:
            return False
        self.ipr.link("del", index=index[0])
        return True

    def ensure_only_address(self, index, network):
        """``network`` (an ``IPv4Network``, e.g. 10.1.15.0/32) the one IPv4 address of the link
        ``index``; returns the actions."""
        actions = []
        found = False
        for msg in self.ipr.get_addr(index=index, family=socket.AF_INET):
            address = _attr(msg, "IFA_LOCAL") or _attr(msg, "IFA_ADDRESS")
            if address == str(network.network_address) and msg["prefixlen"] == network.prefixlen:
                found = True
                continue
            self.ipr.addr("del", index=index, address=address, prefixlen=msg["prefixlen"])
            actions.append("removed the address %s/%d" % (address, msg["prefixlen"]))
        if not found:
            self.ipr.addr("add", index=index, address=str(network.network_address), prefixlen=network.prefixlen)
            actions.append("added the address %s" % network)
        return actions

    # -- per-peer state -----------------------------------------------------------------------
    def owned_routes(self, network):
        """``{subnet: (gateway, oif, flags)}`` of the routes in the main table that this module
        owns, inside ``network``."""
        routes = {}
        for msg in self.ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE):
            if msg["proto"] != ROUTE_PROTO or _attr(msg, "RTA_TABLE", MAIN_TABLE) != MAIN_TABLE:
                continue
            dst = _attr(msg, "RTA_DST")
            if dst is None:
                continue
            subnet = _network(dst, msg["dst_len"])
            if subnet.subnet_of(network):
                routes[subnet] = (_attr(msg, "RTA_GATEWAY"), _attr(msg, "RTA_OIF"), msg["flags"] & RTNH_F_ONLINK)
        return routes

    def _sync_routes(self, network, wanted, add=True, remove=True):
        """Routes ``{subnet: (gateway, oif, onlink)}`` owned here and nothing else owned here
        (``add``: the missing ones; ``remove``: the others)."""
        actions = []
        current = self.owned_routes(network)
        for subnet, route in sorted(current.items()):
            if remove and subnet not in wanted:
                self.ipr.route("del", dst=str(subnet.network_address), dst_len=subnet.prefixlen,
                               table=MAIN_TABLE, proto=ROUTE_PROTO)
                actions.append("removed the route to %s via %s" % (subnet, route[0]))
        for subnet, route in sorted(wanted.items() if add else ()):
            gateway, oif, onlink = route
            if current.get(subnet) == (gateway, oif, RTNH_F_ONLINK if onlink else 0):
                continue
            self.ipr.route("replace", dst=str(subnet.network_address), dst_len=subnet.prefixlen, gateway=gateway,
                           oif=oif, flags=RTNH_F_ONLINK if onlink else 0, table=MAIN_TABLE, proto=ROUTE_PROTO)
            actions.append("routed %s via %s" % (subnet, gateway))
        return actions

    def neighbours(self, index):
        """``{address: mac}`` of the permanent IPv4 neighbours of the link ``index``."""
        found = {}
        for msg in self.ipr.get_neighbours(family=socket.AF_INET, ifindex=index):
            if msg["ifindex"] == index and msg["state"] & NUD_PERMANENT and _attr(msg, "NDA_DST"):
                found[_attr(msg, "NDA_DST")] = (_attr(msg, "NDA_LLADDR") or "").lower()
        return found

    def fdb(self, index):
        """``{mac: destination}`` of the forwarding entries of the vxlan link ``index`` that name
        a remote (the all-zeros default entries are left out)."""
        found = {}
        for msg in self.ipr.fdb("dump", ifindex=index):
            mac = (_attr(msg, "NDA_LLADDR") or "").lower()
            dst = _attr(msg, "NDA_DST")
            if msg["ifindex"] == index and dst and mac and mac != "00:00:00:00:00:00":
                found[mac] = dst
        return found

    def vxlan_peers(self, link, network, peers):
        """Bring the vxlan ``link``'s entries in line with ``peers``, ``{subnet: (vtep_mac,
        public_ip)}``: route, neighbour and FDB entry for each, and nothing for subnets that left.
        Returns the actions."""
        wanted_neigh = dict((str(subnet.network_address), mac.lower()) for subnet, (mac, _ip) in peers.items())
        wanted_fdb = dict((mac.lower(), public_ip) for mac, public_ip in peers.values())
        routes = dict((subnet, (str(subnet.network_address), link.index, True)) for subnet in peers)
        # routes of subnets that left go first, new ones last: the first packet on a new route
        # finds its neighbour and FDB entry
        actions = self._sync_routes(network, routes, add=False)
        current = self.neighbours(link.index)
        for address, mac in sorted(current.items()):
            if ipaddress.IPv4Address(address) in network and wanted_neigh.get(address) != mac:
                self.ipr.neigh("del", dst=address, lladdr=mac, ifindex=link.index)
                actions.append("removed the neighbour %s (%s)" % (address, mac))
        current_fdb = self.fdb(link.index)
        for mac, dst in sorted(current_fdb.items()):
            if wanted_fdb.get(mac) != dst:
                self.ipr.fdb("del", ifindex=link.index, lladdr=mac, dst=dst)
                actions.append("removed the FDB entry %s dst %s" % (mac, dst))
        for mac, dst in sorted(wanted_fdb.items()):
            if current_fdb.get(mac) != dst:
                self.ipr.neigh("replace", family=AF_BRIDGE, ifindex=link.index, lladdr=mac, dst=dst,
                               state=NUD_PERMANENT | NUD_NOARP, flags=NTF_SELF)
                actions.append("FDB entry %s dst %s" % (mac, dst))
        for address, mac in sorted(wanted_neigh.items()):
            if current.get(address) != mac:
                self.ipr.neigh("replace", dst=address, lladdr=mac, ifindex=link.index, state=NUD_PERMANENT)
                actions.append("neighbour %s at %s" % (address, mac))
        return actions + self._sync_routes(network, routes, remove=False)

    def direct_routes(self, link, network, peers):
        """host-gw: a route ``<subnet> via <public_ip> dev <link>`` for each of ``peers``,
        ``{subnet: public_ip}``, and none for subnets that left. Returns the actions."""
        return self._sync_routes(network, dict(
            (subnet, (public_ip, link.index, False)) for subnet, public_ip in peers.items()))


def _describe(vxlan):
    return "vxlan id %d local %s dev #%d dstport %d%s" % (vxlan.vni, vxlan.local, vxlan.link, vxlan.port,
                                                          " gbp" if vxlan.gbp else "")
