# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""flannel: this host's subnet of the overlay network, leased in etcd on flannel's own layout.

Entry point ``python3 -m etcdfleet_agents.flannel`` (see ``--help``); the daemon is
``etcdfleet_agents.daemons.flannel.Flannel``.
"""

import sys

from etcdfleet_agents import runtime
from etcdfleet_agents.daemons.flannel import Flannel


def cli(argv=None, environ=None):
    """A setting that cannot work is reported in one line and exit status 2, not a traceback."""
    return runtime.cli(Flannel, argv=argv, environ=environ)


if __name__ == "__main__":
    sys.exit(cli())
