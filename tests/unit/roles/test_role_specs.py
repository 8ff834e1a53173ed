"""Every role's defaults and meta/argument_specs.yml describe the same variables."""

import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
ROLES = sorted(p.parent.parent for p in ROOT.glob("roles/*/meta/argument_specs.yml"))
ROLES_WITH_DEFAULTS = sorted(p.parent.parent for p in ROOT.glob("roles/*/defaults/main.yml"))


def _load(path):
    return yaml.safe_load(path.read_text()) or {}


def test_every_role_has_argument_specs():
    assert ROLES_WITH_DEFAULTS, "no role defaults found"
    missing = [r.name for r in ROLES_WITH_DEFAULTS if r not in ROLES]
    assert not missing, f"roles without meta/argument_specs.yml: {missing}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_and_specs_agree(role):
    defaults_file = role / "defaults" / "main.yml"
    defaults = _load(defaults_file) if defaults_file.exists() else {}
    options = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"].get("options", {})
    assert sorted(set(defaults) - set(options)) == [], "defaults without a spec"
    assert sorted(set(options) - set(defaults)) == [], "specs without a default"
    for name, spec in options.items():
        assert spec.get("description"), f"{name} has no description"
        if "{{" in str(spec.get("default", "")):
            pytest.fail(f"{name}: a templated default in the spec is evaluated when the role starts")
        if "default" in spec and "{{" not in str(defaults[name]):
            assert spec["default"] == defaults[name], f"{name}: spec default differs from defaults/main.yml"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_variables_carry_the_role_prefix(role):
    options = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"].get("options", {})
    bad = [name for name in options if not name.startswith(role.name + "_")]
    assert not bad, f"variables without the prefix {role.name}_: {bad}"
