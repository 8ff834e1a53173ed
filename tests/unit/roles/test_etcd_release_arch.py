"""The etcd role maps the node's machine name to the release's architecture name."""

import pathlib

import jinja2
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
VARS = yaml.safe_load((ROOT / "roles/etcd/vars/main.yml").read_text())
DEFAULTS = yaml.safe_load((ROOT / "roles/etcd/defaults/main.yml").read_text())


def render(name, **context):
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    values = dict(DEFAULTS, **VARS)
    values.update(context)
    # Variables that refer to variables, resolved round by round as Ansible does lazily.
    templated = [key for key, value in values.items() if key.startswith("etcd_release") and "{{" in str(value)]
    resolved = dict(values)
    for dummy in range(len(templated) + 1):
        resolved = dict(values, **{key: env.from_string(str(values[key])).render(**resolved).strip()
                                   for key in templated if _renders(env, values[key], resolved)})
    return resolved[name]


def _renders(env, text, values):
    try:
        env.from_string(str(text)).render(**values)
        return True
    except jinja2.TemplateError:
        return False


@pytest.mark.parametrize("machine,arch", [("x86_64", "amd64"), ("aarch64", "arm64"), ("ppc64le", "ppc64le")])
def test_machine_names_map_to_release_names(machine, arch):
    facts = {"architecture": machine}
    assert render("etcd_release_arch_effective", ansible_facts=facts) == arch
    url = render("etcd_release_url", ansible_facts=facts)
    assert url.endswith(f"/v{DEFAULTS['etcd_release_version']}/etcd-v{DEFAULTS['etcd_release_version']}-linux-{arch}.tar.gz"), url


def test_arm64_takes_its_own_checksum_and_an_explicit_one_wins():
    facts = {"architecture": "aarch64"}
    checksums = {"amd64": "sha256:aa", "arm64": "sha256:bb"}
    assert render("etcd_release_checksum_effective", ansible_facts=facts, etcd_release_checksums=checksums) == "sha256:bb"
    assert render("etcd_release_checksum_effective", ansible_facts=facts, etcd_release_checksums=checksums,
                  etcd_release_checksum="sha256:cc") == "sha256:cc"
    assert render("etcd_release_checksum_effective", ansible_facts=facts, etcd_release_checksums={"amd64": "x"}) == ""


def test_an_explicit_architecture_wins_over_the_node():
    assert render("etcd_release_arch_effective", ansible_facts={"architecture": "x86_64"},
                  etcd_release_arch="arm64") == "arm64"
