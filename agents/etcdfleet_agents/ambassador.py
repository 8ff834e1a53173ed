# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ambassador: a local port that reaches one service, through an HAProxy of its own.

Entry point ``python3 -m etcdfleet_agents.ambassador`` (see ``--help``); the daemon is
``etcdfleet_agents.daemons.ambassador.Ambassador``.
"""

import sys

from etcdfleet_agents import runtime
from etcdfleet_agents.daemons.ambassador import Ambassador


def cli(argv=None, environ=None):
    """A setting that cannot work is reported in one line and exit status 2, not a traceback."""
    return runtime.cli(Ambassador, argv=argv, environ=environ)


if __name__ == "__main__":
    sys.exit(cli())
