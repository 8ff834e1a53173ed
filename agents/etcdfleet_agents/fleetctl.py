# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetctl: drive the fleet registry from a shell, with fleet's commands and output.

Entry point ``python3 -m etcdfleet_agents.fleetctl`` (the ``fleetctl`` wrapper on every node);
the commands are in ``etcdfleet_agents.cli.fleetctl``.
"""

from etcdfleet_agents.cli.fleetctl import main

if __name__ == '__main__':
    raise SystemExit(main())
