"""The collection builds, installs into an empty collections path, and its playbooks run by FQCN."""

import json
import os
import pathlib
import re
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())


def run(*args, cwd, env=None):
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("collection")
    run(BIN / "ansible-galaxy", "collection", "build", "--output-path", work / "dist", ROOT, cwd=work)
    tarball = work / "dist" / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    assert tarball.exists(), list((work / "dist").iterdir())
    path = work / "collections"
    # Only the empty path: a copy installed elsewhere on this machine must not count.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(path), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    run(BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", path, tarball, cwd=work, env=env)
    assert (path / "ansible_collections" / "etcdfleet" / "cluster" / "MANIFEST.json").exists()
    return {"tarball": tarball, "path": path, "work": work, "env": env}


def tarball_names(tarball):
    with tarfile.open(tarball) as tar:
        return {name[2:] if name.startswith("./") else name for name in tar.getnames()}


def test_tarball_leaves_out_tests_caches_and_the_checkout_link(installed):
    names = tarball_names(installed["tarball"])
    for part in ("tests/", ".git/", ".venv/", ".lab/", "playbooks/collections", "__pycache__"):
        assert not [n for n in names if part in n], f"{part} is in the tarball"
    for required in ("MANIFEST.json", "meta/runtime.yml", "roles/lab/tasks/main.yml",
                     "playbooks/site.yml", "playbooks/lab.yml", "playbooks/verify.yml", "README.md",
                     "requirements.txt", "requirements.yml", "bindep.txt", "meta/execution-environment.yml"):
        assert required in names, f"{required} missing from the tarball"


# Development material: the test scenarios, benchmarks, build scripts and their toolchain.
DEVELOPMENT = ("molecule", "bench", "scripts", "Makefile", "requirements-dev.txt", ".config", ".yamllint",
               ".ansible-lint", ".gitignore", ".ci")


def test_tarball_holds_no_development_material(installed):
    names = tarball_names(installed["tarball"])
    found = sorted(n for n in names if n.split("/")[0] in DEVELOPMENT)
    assert not found, f"development material in the tarball: {found[:10]}"
    runtime = (ROOT / "requirements.txt").read_text()
    for tool in ("molecule", "pytest", "ansible-lint", "yamllint"):
        assert tool not in runtime, f"{tool} is a development tool, yet requirements.txt lists it"


def test_galaxy_metadata_names_its_homes_and_dependencies():
    for field in ("repository", "documentation", "issues"):
        assert str(GALAXY.get(field, "")).startswith("https://"), f"galaxy.yml has no {field} URL"
    used = set()
    for path in list((ROOT / "roles").rglob("*.yml")) + list((ROOT / "roles").rglob("*.j2")) \
            + list((ROOT / "playbooks").glob("*.yml")):
        used.update(re.findall(r"\b((?!ansible\.builtin\b)(?:community|ansible)\.[a-z_0-9]+)\.[a-z_0-9]+",
                               path.read_text()))
    assert used, "no collection use found in roles/ and playbooks/: the scan itself is broken"
    declared = set(GALAXY.get("dependencies") or {})
    assert used <= declared, f"used but not declared in galaxy.yml: {sorted(used - declared)}"
    listed = {c["name"] for c in yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]}
    assert listed == declared, f"requirements.yml {sorted(listed)} differs from galaxy.yml {sorted(declared)}"


def test_installed_collection_is_listed(installed):
    out = run(BIN / "ansible-galaxy", "collection", "list", "--format", "json", "-p", installed["path"],
              cwd=installed["work"], env=installed["env"]).stdout
    found = {}
    for per_path in json.loads(out).values():
        found.update(per_path)
    assert found.get("etcdfleet.cluster", {}).get("version") == GALAXY["version"], out


@pytest.mark.parametrize("playbook", ["site", "verify", "lab"])
def test_playbooks_run_by_fqcn_from_the_installed_copy(installed, playbook):
    inventory = installed["work"] / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {g: {"hosts": {"node": {}}}
                                                              for g in ["cluster", "docker", "etcd", "fleet"]}}}))
    result = run(BIN / "ansible-playbook", "-i", inventory, "--list-tasks", f"etcdfleet.cluster.{playbook}",
                 cwd=installed["work"], env=installed["env"])
    assert "etcdfleet.cluster." in result.stdout, result.stdout
    # Tasks come from the installed copy, not from this checkout (whose virtual environment, where
    # Python's warnings come from, may be inside it).
    for part in ("playbooks", "roles", "plugins"):
        assert str(ROOT / part) not in result.stdout + result.stderr, part
    assert f"playbook: {installed['path']}" in result.stdout, result.stdout


def test_roles_document_their_arguments(installed):
    for role in ("lab", "docker_engine", "verify"):
        out = run(BIN / "ansible-doc", "-t", "role", f"etcdfleet.cluster.{role}",
                  cwd=installed["work"], env=installed["env"]).stdout
        assert re.search(r"ENTRY POINT: \*?main\*?", out), out


@pytest.mark.parametrize("tag,plays", [("fleet", {"fleet"}), ("etcd", {"etcd", "etcd_discovery"}),
                                       ("registrator", {"registrator"}), ("flannel", {"flannel"})])
def test_a_component_tag_selects_that_component_alone(installed, tag, plays):
    inventory = installed["work"] / "inventory-tags.yml"
    groups = ["cluster", "docker", "etcd", "etcd_discovery", "fleet", "registrator", "docker_discover", "ambassador",
              "flannel"]
    inventory.write_text(yaml.safe_dump({"all": {"children": {g: {"hosts": {"node": {}}} for g in groups}}}))
    out = run(BIN / "ansible-playbook", "-i", inventory, "--list-tasks", "--tags", tag, "etcdfleet.cluster.site",
              cwd=installed["work"], env=installed["env"]).stdout
    selected, play = {}, None
    for line in out.splitlines():
        header = re.match(r"\s*play #\d+ \(([^)]*)\)", line)
        if header:
            play = header.group(1)
        elif "TAGS: [" in line and "Validating arguments against arg spec" not in line:
            # (argument validation of every role is tagged `always` by Ansible and changes nothing)
            selected.setdefault(play, []).append(line.strip())
    assert set(selected) == plays, f"--tags {tag} runs tasks of the plays {sorted(selected)}:\n{out}"
