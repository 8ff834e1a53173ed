#!/usr/bin/env bash
# Prints how to reach the lab cluster described by an inventory written by playbooks/lab.yml.
# Usage: scripts/cluster-info.sh INVENTORY
set -euo pipefail
inventory=${1:?usage: cluster-info.sh INVENTORY}
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/.venv/bin/python" - "$inventory" <<'PY'
import sys
import yaml

inv = yaml.safe_load(open(sys.argv[1]))
hosts = inv["all"]["children"]["cluster"]["hosts"]
print("The cluster is up. Its nodes:")
for name, h in hosts.items():
    print(f"  {name:8} {h.get('lab_node_address', '?'):15} container {h['ansible_host']}")
first = next(iter(hosts.values()))["ansible_host"]
print()
print("Log in to a node:        docker exec -it %s bash -l" % first)
print("etcd there (TLS; a login shell sets etcdctl's certificate from /etc/profile.d/etcdctl.sh):")
print("                         docker exec %s bash -lc 'etcdctl ls --recursive /services'" % first)
print("fleet there:             docker exec %s fleetctl list-units" % first)
print("curl there:              docker exec %s curl --cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/client.crt \\" % first)
print("                           --key /etc/etcd/pki/client.key https://127.0.0.1:2379/v2/keys/services")
print("Run Ansible against it:  .venv/bin/ansible -i %s cluster -m ansible.builtin.ping" % sys.argv[1])
print("Verify it again:         .venv/bin/ansible-playbook -i %s playbooks/verify.yml" % sys.argv[1])
print("Tear it down:            make lab-down")
PY
