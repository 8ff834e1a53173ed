"""etcd as site.yml makes it on a node with `etcd_tls: false`: plain http only when asked for, and a
member never moved between plain http and TLS by a later run (the secure default is checked in
test_plain_core_site.py, on the node that test builds)."""

import json

from labnodes import address, docker, knock, run_playbook


def _etcd_on_one_node(nodes, inventory, name):
    container = nodes.start(name)
    nodes.wait_booted(container)
    return container, inventory({name: container}, groups=("etcd",))


def test_opt_out_serves_plain_http_and_is_kept(nodes, inventory, tmp_path):
    container, inv = _etcd_on_one_node(nodes, inventory, "plain")
    opt_out = ("-e", "etcd_tls=false", "-e", f"etcd_tls_local_dir={tmp_path / 'pki'}")

    result = run_playbook("site.yml", inv, "--tags", "etcd,runtime", *opt_out)
    assert result.returncode == 0, result.stdout + result.stderr
    code, body = knock(container, f"http://{address(container)}:2379/v2/keys/")
    assert code == 0 and json.loads(body)["action"] == "get", body
    env = docker("exec", container, "cat", "/etc/etcdfleet/etcd.env").stdout
    assert "ETCDFLEET_ENDPOINTS=http://" in env and "CA_CERT" not in env, env

    # the same cluster run again with the default: refused, naming the setting, and left serving
    result = run_playbook("site.yml", inv, "--tags", "etcd", "-e", f"etcd_tls_local_dir={tmp_path / 'pki'}")
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "runs with http peers" in out and "set etcd_tls: false" in out, out
    code, body = knock(container, f"http://{address(container)}:2379/v2/keys/")
    assert code == 0 and json.loads(body)["action"] == "get", body
