# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""registrator: the published ports of this node's Docker containers, registered in the service store.

Entry point ``python3 -m etcdfleet_agents.registrator`` (see ``--help``); the daemon is
``etcdfleet_agents.daemons.registrator.Registrator``.
"""

import sys

from etcdfleet_agents import runtime
from etcdfleet_agents.daemons.registrator import Registrator


def cli(argv=None, environ=None):
    """A setting that cannot work is reported in one line and exit status 2, not a traceback."""
    return runtime.cli(Registrator, argv=argv, environ=environ)


if __name__ == "__main__":
    sys.exit(cli())
