"""etcd as site.yml makes it on a node: TLS by default with no secret in --diff output, plain http
only when asked for, and a member never moved between the two by a later run."""

import json

from labnodes import docker, run_playbook


def _etcd_on_one_node(nodes, inventory, name):
    container = nodes.start(name)
    nodes.wait_booted(container)
    return container, inventory({name: container}, groups=("etcd",))


def _knock(container, url, *curl_args):
    """curl's exit code and body for a request from inside the node."""
    result = docker("exec", container, "curl", "--http1.1", "-sS", "--max-time", "5", *curl_args, url, check=False)
    return result.returncode, result.stdout


def _address(container):
    return docker("exec", container, "hostname", "-I").stdout.split()[0]


def test_secure_default_keeps_secrets_out_of_the_diff(nodes, inventory, tmp_path):
    container, inv = _etcd_on_one_node(nodes, inventory, "tls")
    pki = tmp_path / "pki"

    result = run_playbook("site.yml", inv, "--tags", "etcd,runtime", "--diff", "-e", f"etcd_tls_local_dir={pki}")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out

    # the keys the run made and copied, and no private key block at all, stay out of the output
    assert "PRIVATE KEY" not in out, out
    for key in ("client.key", "ca.key", "tls.key", "tls-peer.key"):
        body = "".join(line for line in (pki / key).read_text().splitlines() if "-----" not in line)
        assert body[:40] not in out.replace("\n", ""), key

    address = _address(container)
    ca = ["--cacert", "/etc/etcd/pki/ca.crt"]
    client = ["--cert", "/etc/etcd/pki/client.crt", "--key", "/etc/etcd/pki/client.key"]
    code, body = _knock(container, f"https://{address}:2379/v2/keys/", *ca, *client)
    assert code == 0 and json.loads(body)["action"] == "get", body
    assert _knock(container, f"https://{address}:2379/v2/keys/", *ca)[0] != 0, "no client certificate"
    assert _knock(container, "https://127.0.0.1:2379/v2/keys/", *ca)[0] != 0, "no client certificate on localhost"
    code, body = _knock(container, f"http://{address}:2379/v2/keys/")
    assert '"action"' not in body, "plain http must not be served"
    assert _knock(container, f"https://{address}:2380/members", *ca, *client)[0] != 0, \
        "the peer port must refuse a client certificate"
    peer = ["--cert", "/etc/etcd/pki/peer.crt", "--key", "/etc/etcd/pki/peer.key"]
    code, body = _knock(container, f"https://{address}:2380/members", *ca, *peer)
    assert code == 0 and json.loads(body)[0]["name"] == "tls", body

    # etcdctl in a login shell and the node's etcd settings carry the certificate
    listing = docker("exec", container, "bash", "-lc", "etcdctl set /lab/tls yes && etcdctl get /lab/tls", check=False)
    assert listing.returncode == 0 and listing.stdout.split()[-1] == "yes", listing.stdout + listing.stderr
    modes = docker("exec", container, "stat", "-c", "%n %a %U:%G", "/etc/etcd/pki/member.key", "/etc/etcd/pki/peer.key",
                   "/etc/etcd/pki/client.key", "/etc/etcdfleet/pki/client.key").stdout.split("\n")
    assert [line.split()[1:] for line in modes if line] == [["640", "root:etcd"]] * 3 + [["600", "root:root"]], modes


def test_opt_out_serves_plain_http_and_is_kept(nodes, inventory, tmp_path):
    container, inv = _etcd_on_one_node(nodes, inventory, "plain")
    opt_out = ("-e", "etcd_tls=false", "-e", f"etcd_tls_local_dir={tmp_path / 'pki'}")

    result = run_playbook("site.yml", inv, "--tags", "etcd,runtime", *opt_out)
    assert result.returncode == 0, result.stdout + result.stderr
    code, body = _knock(container, f"http://{_address(container)}:2379/v2/keys/")
    assert code == 0 and json.loads(body)["action"] == "get", body
    env = docker("exec", container, "cat", "/etc/etcdfleet/etcd.env").stdout
    assert "ETCDFLEET_ENDPOINTS=http://" in env and "CA_CERT" not in env, env

    # the same cluster run again with the default: refused, naming the setting, and left serving
    result = run_playbook("site.yml", inv, "--tags", "etcd", "-e", f"etcd_tls_local_dir={tmp_path / 'pki'}")
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "runs with http peers" in out and "set etcd_tls: false" in out, out
    code, body = _knock(container, f"http://{_address(container)}:2379/v2/keys/")
    assert code == 0 and json.loads(body)["action"] == "get", body
