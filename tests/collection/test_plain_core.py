"""The built tarball works on a plain ansible-core with only the dependencies galaxy.yml declares
(tests/plaincore.py makes that controller; tests/lab/test_plain_core_site.py runs site.yml with it)."""

import json

import pytest
import yaml

from plaincore import GALAXY, install, run, venv


@pytest.fixture(scope="module")
def plain_core():
    return venv()


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
