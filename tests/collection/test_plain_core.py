"""The built tarball works on a plain ansible-core with only the dependencies galaxy.yml declares.

Galaxy is out of reach here, so the declared dependencies come from the copies the `ansible`
package carries (with their MANIFEST.json), resolved through their own declared dependencies,
into an empty collections path; the controller is a virtual environment with ansible-core alone.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
# The collections that the `ansible` package of the development environment carries.
BUNDLED = pathlib.Path(__import__("ansible").__file__).parents[1] / "ansible_collections"
CORE_PIN = re.search(r"^ansible-core==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M).group(1)


def run(args, env, cwd, check=True):
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=900, check=False)
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def plain_core(tmp_path_factory):
    """A virtual environment with ansible-core alone (kept under build/ between runs)."""
    venv = ROOT / "build" / f"plain-ansible-core-{CORE_PIN}"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "ansible-playbook").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        f"ansible-core=={CORE_PIN}"], check=True, timeout=900)
    listed = run([python, "-m", "pip", "list", "--format", "json"], dict(os.environ), ROOT).stdout
    names = {p["name"].lower() for p in json.loads(listed)}
    assert "ansible" not in names and "ansible-core" in names, sorted(names)
    return venv / "bin"


def copy_with_dependencies(name, requirement, dest, copied):
    """Copy the bundled collection NAME and, through its MANIFEST.json, what it depends on."""
    if name in copied:
        return
    namespace, collection = name.split(".")
    source = BUNDLED / namespace / collection
    assert (source / "MANIFEST.json").exists(), f"{name} ({requirement}) is not in the ansible package"
    shutil.copytree(source, dest / "ansible_collections" / namespace / collection, symlinks=True)
    copied.add(name)
    info = json.loads((source / "MANIFEST.json").read_text())["collection_info"]
    for dependency, version in (info.get("dependencies") or {}).items():
        copy_with_dependencies(dependency, version, dest, copied)


def install(plain_core, work, with_dependencies):
    path = work / ("collections" if with_dependencies else "collections-alone")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VIRTUAL_ENV"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(path), ANSIBLE_NOCOLOR="1", ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               PATH=os.pathsep.join([str(plain_core), "/usr/bin", "/bin"]))
    dist = work / "dist"
    if not dist.exists():
        run([plain_core / "ansible-galaxy", "collection", "build", "--output-path", dist, ROOT], env, work)
    tarball = dist / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    copied = set()
    if with_dependencies:
        for name, version in (GALAXY.get("dependencies") or {}).items():
            copy_with_dependencies(name, version, path, copied)
    flags = [] if with_dependencies else ["--no-deps"]
    run([plain_core / "ansible-galaxy", "collection", "install", "--offline", *flags, "-p", path, tarball],
        env, work)
    return env, copied


def inventory(work):
    hosts = {"node": {"ansible_connection": "local"}}
    groups = ["cluster", "docker", "etcd", "fleet", "registrator", "docker_discover", "ambassador"]
    path = work / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {g: {"hosts": hosts} for g in groups}}}))
    return path


@pytest.fixture(scope="module")
def plain(plain_core, tmp_path_factory):
    work = tmp_path_factory.mktemp("plain")
    env, copied = install(plain_core, work, with_dependencies=True)
    return {"bin": plain_core, "env": env, "work": work, "copied": copied, "inventory": inventory(work)}


def test_declared_dependencies_install_offline(plain):
    assert set(GALAXY["dependencies"]) <= plain["copied"], plain["copied"]
    out = run([plain["bin"] / "ansible-galaxy", "collection", "list", "--format", "json"],
              plain["env"], plain["work"]).stdout
    found = {}
    for per_path in json.loads(out).values():
        found.update(per_path)
    assert "etcdfleet.cluster" in found and set(GALAXY["dependencies"]) <= set(found), sorted(found)


@pytest.mark.parametrize("playbook", ["site", "verify", "lab"])
def test_playbooks_pass_syntax_check_on_plain_ansible_core(plain, playbook):
    result = run([plain["bin"] / "ansible-playbook", "-i", plain["inventory"], "--syntax-check",
                  f"etcdfleet.cluster.{playbook}"], plain["env"], plain["work"])
    installed = plain["work"] / "collections" / "ansible_collections" / "etcdfleet" / "cluster"
    assert f"playbook: {installed}/playbooks/{playbook}.yml" in result.stdout, result.stdout


def test_without_the_declared_dependencies_site_does_not_parse(plain_core, tmp_path):
    # The check above can fail: the same tarball without its dependencies is refused.
    env = install(plain_core, tmp_path, with_dependencies=False)[0]
    result = run([plain_core / "ansible-playbook", "-i", inventory(tmp_path), "--syntax-check",
                  "etcdfleet.cluster.site"], env, tmp_path, check=False)
    assert result.returncode != 0, result.stdout
    assert "community.crypto" in result.stdout + result.stderr, result.stdout + result.stderr
