# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""discover (docker-discover): HAProxy on this node following the services in the service store.

Entry point ``python3 -m etcdfleet_agents.discover`` (see ``--help``); the daemon is
``etcdfleet_agents.daemons.discover.DockerDiscover``.
"""

import sys

from etcdfleet_agents import runtime
from etcdfleet_agents.daemons.discover import DockerDiscover


def cli(argv=None, environ=None):
    """A setting that cannot work is reported in one line and exit status 2, not a traceback."""
    return runtime.cli(DockerDiscover, argv=argv, environ=environ)


if __name__ == "__main__":
    sys.exit(cli())
