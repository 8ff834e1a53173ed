"""Fixtures for tests that start lab node containers on this machine's Docker engine."""

import os
import pathlib
import subprocess
import sys
import time
import uuid

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAB_DEFAULTS = yaml.safe_load((ROOT / "roles/lab/defaults/main.yml").read_text())
NODE_IMAGE = os.environ.get("ETCDFLEET_NODE_IMAGE", LAB_DEFAULTS["lab_node_image"])
WORKLOAD_IMAGE = os.environ.get("ETCDFLEET_WORKLOAD_IMAGE", LAB_DEFAULTS["lab_workload_image"])


def docker(*args, check=True, text=True, **kwargs):
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=text, **kwargs)


class Nodes:
    """Starts node containers like the lab's (same image and options) and removes them at the end."""

    def __init__(self):
        self.suffix = uuid.uuid4().hex[:6]
        self.names = []

    def start(self, name, command=("/lib/systemd/systemd",)):
        container = f"etcdfleet-test-{name}-{self.suffix}"
        args = ["run", "-d", "--name", container, "--hostname", name, "--cgroupns=host",
                "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "-v", "/var/lib/docker",
                "--tmpfs", "/run", "--tmpfs", "/run/lock", "-e", "container=docker"]
        for cap in LAB_DEFAULTS["lab_capabilities"]:
            args += ["--cap-add", cap]
        for opt in LAB_DEFAULTS["lab_security_opts"]:
            args += ["--security-opt", opt]
        docker(*args, NODE_IMAGE, *command)
        self.names.append(container)
        return container

    def wait_booted(self, container, timeout=90):
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = docker("exec", container, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.5)
        raise AssertionError(f"{container} did not boot: systemd reports {state!r}")

    def remove(self):
        for container in self.names:
            docker("rm", "-f", "-v", container, check=False)


@pytest.fixture
def nodes():
    if docker("image", "inspect", NODE_IMAGE, check=False).returncode != 0:
        pytest.fail(f"node image {NODE_IMAGE} is missing: run `make images` first")
    n = Nodes()
    yield n
    n.remove()


@pytest.fixture
def inventory(tmp_path):
    def write(hosts, groups=()):
        """The nodes (name -> container) in group cluster, and ``groups`` made of cluster."""
        children = {"cluster": {"hosts": {h: {"ansible_host": c} for h, c in hosts.items()}}}
        children.update({group: {"children": {"cluster": {}}} for group in groups})
        inv = {"all": {"vars": {"ansible_connection": "community.docker.docker",
                                "ansible_user": LAB_DEFAULTS["lab_node_user"],
                                "ansible_python_interpreter": "/usr/bin/python3",
                                "verify_image": WORKLOAD_IMAGE},
                       "children": children}}
        path = tmp_path / "inventory.yml"
        path.write_text(yaml.safe_dump(inv))
        return path
    return write


def run_playbook(playbook, inventory_path, *args):
    """ansible-playbook on one of the collection's playbooks; ``args`` go on its command line."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return subprocess.run([ansible_playbook, "-i", str(inventory_path), str(ROOT / "playbooks" / playbook), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False)


def knock(container, url, *curl_args):
    """curl's exit code and body for a request from inside the node."""
    result = docker("exec", container, "curl", "--http1.1", "-sS", "--max-time", "5", *curl_args, url, check=False)
    return result.returncode, result.stdout


def address(container):
    """The node's address on its Docker network (not that of a Docker engine inside it)."""
    return docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container).stdout.split()[0]
