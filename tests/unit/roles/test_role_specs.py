"""Every role's defaults and meta/argument_specs.yml describe the same variables."""

import pathlib
import re

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
    entries = _load(role / "meta" / "argument_specs.yml")["argument_specs"]
    options = entries["main"].get("options", {})
    specified = {}
    for entry in entries.values():
        specified.update(entry.get("options") or {})
    assert sorted(set(defaults) - set(specified)) == [], "defaults without a spec in any entry point"
    assert sorted(set(options) - set(defaults)) == [], "specs without a default"
    for name, spec in specified.items():
        assert spec.get("description"), f"{name} has no description"
        if "{{" in str(spec.get("default", "")):
            pytest.fail(f"{name}: a templated default in the spec is evaluated when the role starts")
        if "default" in spec and name in defaults and "{{" not in str(defaults[name]):
            assert spec["default"] == defaults[name], f"{name}: spec default differs from defaults/main.yml"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_variables_carry_the_role_prefix(role):
    options = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"].get("options", {})
    bad = [name for name in options if not name.startswith(role.name + "_")]
    assert not bad, f"variables without the prefix {role.name}_: {bad}"


# What a role is made of, apart from its documentation (meta/).
ROLE_CODE = ("tasks", "templates", "vars", "defaults", "handlers", "files")
# How a node agent is started: the interpreter and package, the library's path, the settings file.
LAUNCH = re.compile(r"-m\s+etcdfleet_agents\b|etcdfleet_agents\.[a-z]|PYTHONPATH|(etcdfleet|_config_dir\s*\}\})/etcd\.env\b")
# A path from one role into another (a role's own ../.. to the collection root is fine).
INTO_ANOTHER_ROLE = re.compile(r"role_path\s*\}\}/\.\./(?!\.\.)")
# `include_role` / `import_role` of this collection with tasks_from: one task per entry point.
ENTRY_POINT = re.compile(r"name:\s*etcdfleet\.cluster\.(\w+)\s*\n\s*tasks_from:\s*(\w+)\.yml")


def _role_code(role):
    for part in ROLE_CODE:
        for path in sorted((role / part).rglob("*")):
            if path.is_file():
                yield path


@pytest.mark.parametrize("role", [r for r in ROLES if r.name not in ("node_runtime", "etcd")], ids=lambda p: p.name)
def test_only_node_runtime_spells_how_agents_start(role):
    """Services, fleet units, commands and checks of the node agents all come from node_runtime's
    entry points (service, fleet_unit, command); the etcd role's own etcd.env is another file."""
    bad = ["%s: %s" % (path.relative_to(ROOT), line.strip())
           for path in _role_code(role) for line in path.read_text().splitlines() if LAUNCH.search(line)]
    assert not bad, "launch of a node agent outside node_runtime"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_no_role_reads_another_roles_files(role):
    bad = [str(path.relative_to(ROOT)) for path in _role_code(role) if INTO_ANOTHER_ROLE.search(path.read_text())]
    assert not bad, "a role reaching into another role's files (give the file a public home)"


def test_node_runtime_entry_points_have_argument_specs():
    """Every entry point of node_runtime that roles, playbooks and molecule use is specified."""
    used = set()
    for path in sorted(ROOT.glob("roles/**/*.yml")) + sorted(ROOT.glob("playbooks/**/*.yml")) \
            + sorted(ROOT.glob("molecule/**/*.yml")):
        used.update(ENTRY_POINT.findall(path.read_text()))
    assert ("node_runtime", "service") in used, "no entry point found: the pattern is wrong"
    specs = _load(ROOT / "roles" / "node_runtime" / "meta" / "argument_specs.yml")["argument_specs"]
    missing = sorted(entry for role, entry in used if role == "node_runtime" and entry not in specs)
    assert not missing, "entry points without argument specs"
