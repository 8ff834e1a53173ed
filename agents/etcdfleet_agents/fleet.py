# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleet: the agent and the engine of one machine, in one process (like fleetd).

Entry point ``python3 -m etcdfleet_agents.fleet`` (see ``--help``); the daemon is
``etcdfleet_agents.daemons.fleet.FleetDaemon``, the scheduling it runs is in ``scheduling/``
and its edge to systemd in ``systemd/``.
"""

from etcdfleet_agents import runtime
from etcdfleet_agents.daemons.fleet import FleetDaemon


def main(argv=None, environ=None):
    """Run the daemon; a setting that cannot work ends it with one line on stderr and exit 2."""
    return runtime.cli(FleetDaemon, argv=argv, environ=environ)


if __name__ == '__main__':
    raise SystemExit(main())
