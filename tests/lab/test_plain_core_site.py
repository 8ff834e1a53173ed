"""What a user who installs the collection from Galaxy does: site.yml by its FQCN, from a controller
with ansible-core alone and the tarball's declared dependencies, on a node reached through its
non-root account with sudo, with --diff; then the node as that account sees it, the secure default
as curl sees it (the certificates each of etcd's ports takes, no secret in the diff, key modes),
the optional firewall as a host outside the cluster sees it, and changed settings restarting only
their daemon or member."""

import json
import re

import time

from labnodes import LAB_DEFAULTS, NODE_IMAGE, WORKLOAD_IMAGE, address, docker, knock
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

    result, out = site("--diff", "-e", "firewall_enabled=true")
    assert result.returncode == 0, out[-6000:]
    recap = re.search(r"^plain\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", out, re.M)
    assert recap, out[-3000:]
    secure_default(node, tmp_path / "pki", out)
    firewall_keeps_outsiders_out(node)

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


def secure_default(container, pki, out):
    """TLS as site.yml makes it by default, seen with curl, etcdctl and stat on the node."""
    # the keys the run made and copied, and no private key block at all, stay out of the output
    assert "PRIVATE KEY" not in out, out[-3000:]
    for key in ("client.key", "ca.key", "plain.key", "plain-peer.key"):
        body = "".join(line for line in (pki / key).read_text().splitlines() if "-----" not in line)
        assert body[:40] not in out.replace("\n", ""), key

    here = address(container)
    ca = ["--cacert", "/etc/etcd/pki/ca.crt"]
    client = ["--cert", "/etc/etcd/pki/client.crt", "--key", "/etc/etcd/pki/client.key"]
    code, body = knock(container, f"https://{here}:2379/v2/keys/", *ca, *client)
    assert code == 0 and json.loads(body)["action"] == "get", body
    assert knock(container, f"https://{here}:2379/v2/keys/", *ca)[0] != 0, "no client certificate"
    assert knock(container, "https://127.0.0.1:2379/v2/keys/", *ca)[0] != 0, "no client certificate on localhost"
    code, body = knock(container, f"http://{here}:2379/v2/keys/")
    assert '"action"' not in body, "plain http must not be served"
    assert knock(container, f"https://{here}:2380/members", *ca, *client)[0] != 0, \
        "the peer port must refuse a client certificate"
    peer = ["--cert", "/etc/etcd/pki/peer.crt", "--key", "/etc/etcd/pki/peer.key"]
    code, body = knock(container, f"https://{here}:2380/members", *ca, *peer)
    assert code == 0 and json.loads(body)[0]["name"] == "plain", body

    # etcdctl in root's login shell carries the certificate; the keys' modes
    listing = docker("exec", container, "bash", "-lc", "etcdctl set /lab/tls yes && etcdctl get /lab/tls", check=False)
    assert listing.returncode == 0 and listing.stdout.split()[-1] == "yes", listing.stdout + listing.stderr
    # (a daemon with an account of its own owns its key: the registrator's and docker-discover's)
    owners = {"registrator": "etcdfleet-registrator", "discover": "etcdfleet-discover"}
    secrets = {"/etc/etcdfleet/pki/client.key": "root", "/etc/etcdfleet/pki/client-gateway.key": "root"}
    for name in ("fleet", "registrator", "discover", "ambassador", "flannel"):
        secrets[f"/etc/etcdfleet/pki/client-{name}.key"] = owners.get(name, "root")
        secrets[f"/etc/etcdfleet/identities/{name}.env"] = "root"
    modes = docker("exec", container, "stat", "-c", "%n %a %U:%G", "/etc/etcd/pki/member.key", "/etc/etcd/pki/peer.key",
                   "/etc/etcd/pki/client.key", *secrets).stdout.split("\n")
    assert [line.split()[1:] for line in modes if line] == (
        [["640", "root:etcd"]] * 3 + [["600", owner + ":root"] for owner in secrets.values()]), modes
    for name in pki.glob("passwords/*"):
        assert name.stat().st_mode & 0o077 == 0, f"{name} must be the controller user's alone"
        assert name.read_text().split()[0] not in out, f"the password of {name.name} must stay out of the output"

    # etcd itself refuses what a component's user may not do: the registrator writing a fleet
    # unit, fleet reading the services; the operator's certificate (root) may do both
    as_registrator = ["--cert", "/etc/etcdfleet/pki/client-registrator.crt", "--key", "/etc/etcdfleet/pki/client-registrator.key"]
    as_fleet = ["--cert", "/etc/etcdfleet/pki/client-fleet.crt", "--key", "/etc/etcdfleet/pki/client-fleet.key"]
    unit = f"https://{here}:2379/v2/keys/_coreos.com/fleet/job/lab-probe.service/object"
    code, body = knock(container, unit, *ca, *as_registrator, "-XPUT", "-d", "value=x")
    assert code == 0 and "Insufficient credentials" in body, body
    code, body = knock(container, f"https://{here}:2379/v2/keys/services", *ca, *as_fleet)
    assert code == 0 and "Insufficient credentials" in body, body
    code, body = knock(container, unit, *ca, *client, "-XPUT", "-d", "value=x", "-d", "ttl=1")
    assert code == 0 and '"action":"set"' in body, body


def firewall_keeps_outsiders_out(node):
    """With firewall_enabled, a host outside the cluster gets a TCP reset on etcd's ports (curl's
    exit code 7, where etcd itself would fail the TLS handshake), while another port of the node
    answers it; the node's own address is among the allowed clients (the daemons work, as the
    checks above show)."""
    here = address(node)
    allowed = docker("exec", node, "nft", "list", "set", "inet", "etcdfleet", "client_sources4").stdout
    assert here in allowed, allowed
    docker("exec", "-d", node, "python3", "-m", "http.server", "--bind", "0.0.0.0", "8099")

    def from_outside(url):
        return docker("run", "--rm", "--entrypoint", "curl", NODE_IMAGE, "-sk", "-o", "/dev/null",
                      "--max-time", "5", url, check=False).returncode

    deadline = time.monotonic() + 30
    while from_outside(f"http://{here}:8099/") != 0:
        assert time.monotonic() < deadline, "the node's own test port never answered"
        time.sleep(0.5)
    assert from_outside(f"https://{here}:2379/v2/keys/") == 7
    assert from_outside(f"https://{here}:2380/members") == 7
