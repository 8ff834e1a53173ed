# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay's packet filter rules, through the ``iptables`` command.

No netlink library speaks iptables (pyroute2 does not; Debian's python3-nftables cannot accept a
packet past the DROP policy Docker puts on ``FORWARD``, which lives in iptables' own table), so
this module runs ``iptables`` with argument lists, never a shell. The rules live in chains of
their own, jumped to from ``POSTROUTING`` (nat) and ``FORWARD`` (filter): a change of lease
flushes and refills them, and a check (``sync``) finds a chain someone else emptied or a jump a
restarted Docker dropped, and puts them back.

What flanneld's ``-ip-masq`` and forward rules do, for the overlay ``network`` and this host's
``subnet``:

* traffic between subnets of the overlay keeps its addresses (containers see each other's own);
* traffic from the overlay to elsewhere (not multicast) is masqueraded;
* traffic from elsewhere to another host's subnet is masqueraded, to this host's is not;
* the overlay is forwarded both ways whatever the ``FORWARD`` policy.
"""

import subprocess

NAT_CHAIN = "ETCDFLEET-FLANNEL-NAT"
FORWARD_CHAIN = "ETCDFLEET-FLANNEL-FWD"
MULTICAST = "224.0.0.0/4"


def masquerade_rules(network, subnet):
    """The nat rules (argument lists) of the overlay ``network`` with this host's ``subnet``."""
    network, subnet = str(network), str(subnet)
    return [
        ["-s", network, "-d", network, "-j", "RETURN"],
        ["-s", network, "!", "-d", MULTICAST, "-j", "MASQUERADE", "--random-fully"],
        ["!", "-s", network, "-d", subnet, "-j", "RETURN"],
        ["!", "-s", network, "-d", network, "-j", "MASQUERADE", "--random-fully"],
    ]


def forward_rules(network):
    """The filter rules that forward the overlay ``network`` both ways."""
    network = str(network)
    return [["-s", network, "-j", "ACCEPT"], ["-d", network, "-j", "ACCEPT"]]


class IptablesError(RuntimeError):
    """iptables failed (its message, one line)."""


class Iptables(object):
    """Chains of our own, kept holding given rules. ``run(argv)`` returns ``(status, output)``."""

    def __init__(self, binary="iptables", run=None):
        self.binary = binary
        self._run = run or _run
        self._listed = {}   # (table, chain) -> the listing right after we filled it

    def _call(self, table, *args):
        status, output = self._run([self.binary, "-w", "5", "-t", table] + list(args))
        return status, output

    def _must(self, table, *args):
        status, output = self._call(table, *args)
        if status != 0:
            lines = output.strip().splitlines()
            raise IptablesError("iptables -t %s %s: %s" % (table, " ".join(args),
                                                           lines[-1] if lines else "exit status %d" % status))
        return output

    def _holds(self, table, chain, listing, rules):
        """Whether the chain, as ``listing`` shows it, holds exactly ``rules`` (after a restart
        of the daemon, whose rules are then kept as they are)."""
        own = [line for line in listing.splitlines() if line.startswith("-A ")]
        return len(own) == len(rules) and all(self._call(table, "-C", chain, *rule)[0] == 0 for rule in rules)

    def sync(self, table, parent, chain, rules):
        """The chain ``chain`` of ``table`` holding exactly ``rules``, jumped to from the end of
        ``parent``; returns the actions (empty when all was in place)."""
        actions = []
        status, listing = self._call(table, "-S", chain)
        if status != 0:
            self._must(table, "-N", chain)
            listing = None
        key = (table, chain)
        if key not in self._listed and listing is not None and self._holds(table, chain, listing, rules):
            self._listed[key] = listing
        if listing is None or listing != self._listed.get(key):
            self._must(table, "-F", chain)
            for rule in rules:
                self._must(table, "-A", chain, *rule)
            self._listed[key] = self._must(table, "-S", chain)
            actions.append("%s the chain %s of %s (%d rule(s))"
                           % ("created" if listing is None else "refilled", chain, table, len(rules)))
        if self._call(table, "-C", parent, "-j", chain)[0] != 0:
            self._must(table, "-A", parent, "-j", chain)
            actions.append("jumped from %s to %s in %s" % (parent, chain, table))
        return actions

    def forget(self):
        """The next ``sync`` refills every chain (after the rules were changed)."""
        self._listed.clear()

    def remove(self, table, parent, chain):
        """Remove the jump and the chain; True when something was removed."""
        removed = False
        while self._call(table, "-D", parent, "-j", chain)[0] == 0:
            removed = True
        if self._call(table, "-F", chain)[0] == 0:
            self._call(table, "-X", chain)
            removed = True
        self._listed.pop((table, chain), None)
        return removed


def overlay_rules(iptables, network, subnet, ipmasq):
    """Bring the overlay's rules in line: forwarding always, masquerading when ``ipmasq``."""
    actions = iptables.sync("filter", "FORWARD", FORWARD_CHAIN, forward_rules(network))
    if ipmasq:
        actions += iptables.sync("nat", "POSTROUTING", NAT_CHAIN, masquerade_rules(network, subnet))
    elif iptables.remove("nat", "POSTROUTING", NAT_CHAIN):
        actions.append("removed the chain %s of nat (no masquerading)" % NAT_CHAIN)
    return actions


def _run(argv):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
                              universal_newlines=True, timeout=30)
    except OSError as exc:
        raise IptablesError("%s: %s" % (argv[0], exc)) from exc
    except subprocess.TimeoutExpired as exc:
        raise IptablesError("%s did not answer within 30s" % argv[0]) from exc
    return proc.returncode, proc.stdout
