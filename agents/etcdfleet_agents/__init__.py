# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node daemons of etcdfleet.cluster (fleet agent and engine, registrator, discover, ambassador).

They run on the cluster's machines as systemd services, installed by the role
``etcdfleet.cluster.node_runtime`` under /usr/lib/etcdfleet together with the collection's
``plugins/module_utils`` library, which they import for etcd, unit files and service keys.

Entry modules (``python3 -m etcdfleet_agents.<name>``): registrator, announce, discover,
ambassador, fleet, fleetctl. The daemons' logic is in ``daemons/``; fleet's scheduling (engine,
agent, placement) in ``scheduling/``; fleetctl's commands and tables in ``cli/``. The edges are
folders: ``docker/`` (Docker API, events, inspect), ``store/`` (the service store interface and its
etcd and in-memory backends), ``haproxy/`` (render, check, install, reload), ``systemd/`` (unit
files and ``systemctl``), with ``services/`` the service model. etcd itself is reached through the
collection's client layer (``plugins/module_utils/etcd.py``), shared with the modules.
``runtime.py`` holds what every daemon shares (settings, logging, the loop).
"""
