# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node daemons of etcdfleet.cluster (fleet agent and engine, registrator, discover, ambassador).

They run on the cluster's machines as systemd services, installed by the role
``etcdfleet.cluster.node_runtime`` under /usr/lib/etcdfleet together with the collection's
``plugins/module_utils`` library, which they import for etcd, unit files and service keys.
"""
