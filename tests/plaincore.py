"""A controller with ansible-core alone and the built tarball installed with only the dependencies
galaxy.yml declares: what a user who installs the collection from Galaxy has.

Galaxy is out of reach here, so the declared dependencies come from the copies the `ansible`
package carries (with their MANIFEST.json), resolved through their own declared dependencies,
into an empty collections path.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
# The collections that the `ansible` package of the development environment carries.
BUNDLED = pathlib.Path(__import__("ansible").__file__).parents[1] / "ansible_collections"
CORE_PIN = re.search(r"^ansible-core==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M).group(1)


def run(args, env, cwd, check=True, timeout=900):
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def venv():
    """The bin directory of a virtual environment with ansible-core alone (kept under build/)."""
    path = ROOT / "build" / f"plain-ansible-core-{CORE_PIN}"
    python = path / "bin" / "python"
    if not (path / "bin" / "ansible-playbook").exists():
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        f"ansible-core=={CORE_PIN}"], check=True, timeout=900)
    listed = run([python, "-m", "pip", "list", "--format", "json"], dict(os.environ), ROOT).stdout
    names = {p["name"].lower() for p in json.loads(listed)}
    assert "ansible" not in names and "ansible-core" in names, sorted(names)
    return path / "bin"


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


def install(bin_dir, work, with_dependencies):
    """Build the tarball (once per WORK) and install it into a collections path of its own, with the
    declared dependencies or without them. Returns the environment to run ansible with (nothing of
    the development environment in it) and the names of the dependencies copied."""
    path = work / ("collections" if with_dependencies else "collections-alone")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VIRTUAL_ENV"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(path), ANSIBLE_NOCOLOR="1", ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               PATH=os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]))
    dist = work / "dist"
    if not dist.exists():
        run([bin_dir / "ansible-galaxy", "collection", "build", "--output-path", dist, ROOT], env, work)
    tarball = dist / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    copied = set()
    if with_dependencies:
        for name, version in (GALAXY.get("dependencies") or {}).items():
            copy_with_dependencies(name, version, path, copied)
    flags = [] if with_dependencies else ["--no-deps"]
    run([bin_dir / "ansible-galaxy", "collection", "install", "--offline", *flags, "-p", path, tarball], env, work)
    return env, copied
