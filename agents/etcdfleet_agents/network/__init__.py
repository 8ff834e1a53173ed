# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's network edge: links, addresses, routes, neighbours and forwarding entries through
netlink (``links``, on pyroute2), and the packet filter's rules (``iptables``).

Everything here is reconciled, never appended blindly: each call brings one kind of kernel
state in line with what it is given and returns the actions it took (one log line each), so a
restarted daemon finds its own earlier work and leaves it as it is.
"""
