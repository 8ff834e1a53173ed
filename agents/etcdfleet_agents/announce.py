# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""announce: one container's published port announced in the service store while it runs (a sidekick).

Entry point ``python3 -m etcdfleet_agents.announce`` (see ``--help``); the daemon is
``etcdfleet_agents.daemons.announcer.Announcer``.
"""

import sys

from etcdfleet_agents import runtime
from etcdfleet_agents.daemons.announcer import Announcer


def cli(argv=None, environ=None):
    """A setting that cannot work is reported in one line and exit status 2, not a traceback."""
    return runtime.cli(Announcer, argv=argv, environ=environ)


if __name__ == "__main__":
    sys.exit(cli())
