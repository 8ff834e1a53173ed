"""playbooks/verify.yml accepts a working lab node and names what is wrong with a broken one."""

import re

from labnodes import WORKLOAD_IMAGE, docker, run_playbook


def _recap(output, host):
    match = re.search(rf"^{re.escape(host)}\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                      output, re.M)
    assert match, f"no recap line for {host}:\n{output}"
    return {"ok": int(match[1]), "changed": int(match[2]), "unreachable": int(match[3]), "failed": int(match[4])}


def test_verify_tells_working_nodes_from_broken_ones(nodes, inventory):
    good = nodes.start("good")
    no_systemd = nodes.start("nosystemd", command=("sleep", "infinity"))
    no_docker = nodes.start("nodocker")
    nodes.wait_booted(good)
    nodes.wait_booted(no_docker)

    # A working node: Docker installed from the image's package cache, the workload image loaded.
    install = docker("exec", "-e", "DEBIAN_FRONTEND=noninteractive", good,
                     "apt-get", "install", "-y", "--no-download", "docker.io", check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    saved = docker("save", WORKLOAD_IMAGE, text=False)
    docker("exec", "-i", good, "docker", "load", input=saved.stdout, text=False)

    result = run_playbook("verify.yml", inventory({"good": good, "nosystemd": no_systemd, "nodocker": no_docker}))
    out = result.stdout + result.stderr

    assert result.returncode != 0, out
    assert _recap(out, "good")["failed"] == 0, out
    assert _recap(out, "nosystemd")["failed"] == 1, out
    assert _recap(out, "nodocker")["failed"] == 1, out
    assert "nosystemd is not a systemd machine: PID 1 is 'sleep'" in out, out
    assert "nodocker: the Docker engine does not answer" in out, out
    assert re.search(r"good: systemd (running|degraded), machine [0-9a-f]{8}, Docker \d", out), out


def test_verify_refuses_nodes_sharing_a_machine_id(nodes, inventory):
    first = nodes.start("first")
    second = nodes.start("second")
    for container in (first, second):
        nodes.wait_booted(container)
    machine_id = docker("exec", first, "cat", "/etc/machine-id").stdout.strip()
    docker("exec", second, "sh", "-c", f"echo {machine_id} > /etc/machine-id")

    result = run_playbook("verify.yml", inventory({"first": first, "second": second}))
    out = result.stdout + result.stderr

    assert result.returncode != 0, out
    assert f"has machine ID '{machine_id}', which is missing or shared with another node" in out, out
