"""What a user who installs the collection from Galaxy does: site.yml by its FQCN, from a controller
with ansible-core alone and the tarball's declared dependencies, on a node reached through its
non-root account with sudo; then the cluster as that account sees it."""

import re

from labnodes import LAB_DEFAULTS, WORKLOAD_IMAGE, docker
import plaincore

COMPONENTS = ("docker", "etcd", "fleet", "registrator", "docker_discover")


def test_site_from_the_tarball_through_sudo(nodes, inventory, tmp_path):
    bin_dir = plaincore.venv()
    env = plaincore.install(bin_dir, tmp_path, with_dependencies=True)[0]
    node = nodes.start("plain")
    docker("save", "-o", str(tmp_path / "workload.tar"), WORKLOAD_IMAGE)
    nodes.wait_booted(node)
    user = LAB_DEFAULTS["lab_node_user"]
    assert docker("exec", "-u", user, node, "id", "-u").stdout.strip() != "0"

    inv = inventory({"plain": node}, groups=COMPONENTS)
    preload = '{"docker_engine_preload_images": [{"name": "%s", "archive": "%s"}]}' % (
        WORKLOAD_IMAGE, tmp_path / "workload.tar")

    def site(*args):
        done = plaincore.run([bin_dir / "ansible-playbook", "-i", inv, "etcdfleet.cluster.site",
                              "-e", f"etcd_tls_local_dir={tmp_path / 'pki'}", "-e", preload, *args],
                             env, tmp_path, check=False, timeout=1200)
        return done, done.stdout + done.stderr

    result, out = site()
    assert result.returncode == 0, out[-6000:]
    recap = re.search(r"^plain\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", out, re.M)
    assert recap, out[-3000:]

    # the operator's account, logged in: root's etcd client certificate through sudo
    machines = docker("exec", "-u", user, node, "bash", "-lc", "sudo fleetctl list-machines", check=False)
    assert machines.returncode == 0 and len(machines.stdout.splitlines()) == 2, machines.stdout + machines.stderr
    health = docker("exec", "-u", user, node, "bash", "-lc", "sudo -i etcdctl cluster-health", check=False)
    assert "cluster is healthy" in health.stdout, health.stdout + health.stderr
    # the run went through that account (Ansible's working directory is in its home)
    assert docker("exec", node, "test", "-d", f"/home/{user}/.ansible", check=False).returncode == 0
    # and without sudo it holds no key to etcd
    assert docker("exec", node, "test", "-s", "/etc/etcdfleet/pki/client.key", check=False).returncode == 0
    denied = docker("exec", "-u", user, node, "bash", "-lc", "cat /etc/etcdfleet/pki/client.key", check=False)
    assert denied.returncode != 0, denied.stdout

    # a changed setting restarts its daemon once, through the handler, and no other daemon

    def main_pids():
        return {unit: docker("exec", node, "systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip()
                for unit in ("fleet.service", "etcdfleet-registrator.service", "etcd.service")}
    before = main_pids()
    since = docker("exec", node, "date", "+@%s").stdout.strip()
    result, out = site("--tags", "registrator", "-e", "registrator_ttl=45")
    assert result.returncode == 0, out[-6000:]
    assert "Restart the node daemons that changed]" in out, out
    after = main_pids()
    assert after["etcdfleet-registrator.service"] != before["etcdfleet-registrator.service"], (before, after)
    starts = docker("exec", node, "journalctl", "-o", "cat", "--since", since, "-u", "etcdfleet-registrator").stdout
    assert sum(line.startswith("Started etcdfleet-registrator.service") for line in starts.splitlines()) == 1, starts
    assert {k: v for k, v in after.items() if k != "etcdfleet-registrator.service"} == \
        {k: v for k, v in before.items() if k != "etcdfleet-registrator.service"}, (before, after)

    # a changed member setting restarts etcd through its rolling-restart handler, healthy after
    before = after
    result, out = site("--tags", "etcd", "-e", '{"etcd_extra_env": {"ETCD_SNAPSHOT_COUNT": "20000"}}')
    assert result.returncode == 0, out[-6000:]
    assert "Restart changed members one at a time, each healthy before the next]" in out, out
    after = main_pids()
    assert after["etcd.service"] != before["etcd.service"], (before, after)
    assert after["fleet.service"] == before["fleet.service"], (before, after)
    health = docker("exec", "-u", user, node, "bash", "-lc", "sudo -i etcdctl cluster-health", check=False)
    assert "cluster is healthy" in health.stdout, health.stdout + health.stderr
