"""The etcd role's release install: the tarball of the node's architecture, served over real HTTP
(a local server), checked against its checksum, unpacked once."""

import functools
import hashlib
import http.server
import io
import os
import tarfile
import threading

import pytest

VERSION = "9.9.9"


def release_tarball(directory, arch):
    """A stand-in release: etcd-v<VERSION>-linux-<arch>/{etcd,etcdctl} saying which arch they are."""
    name = f"etcd-v{VERSION}-linux-{arch}"
    path = directory / f"{name}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for binary in ("etcd", "etcdctl"):
            data = f"#!/bin/sh\necho {binary} {VERSION} {arch}\n".encode()
            info = tarfile.TarInfo(f"{name}/{binary}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def release_server(tmp_path_factory):
    served = tmp_path_factory.mktemp("releases")
    checksums = {arch: release_tarball(served, arch) for arch in ("amd64", "arm64")}
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "checksums": checksums}
    server.shutdown()


def install(runner, release_server, release_dir, **settings):
    play_vars = {
        "etcd_install_method": "release",
        "etcd_release_version": VERSION,
        "etcd_release_dir": str(release_dir),
        "etcd_release_url": release_server["url"] + "/etcd-v{{ etcd_release_version }}-linux-{{ etcd_release_arch_effective }}.tar.gz",
    }
    play_vars.update(settings)
    return runner.run([{"name": "install", "ansible.builtin.include_role": {
        "name": "etcdfleet.cluster.etcd", "tasks_from": "install_release.yml"}}], play_vars=play_vars)


def changed_tasks(result):
    return [line for line in result.stdout.splitlines() if '"changed": true' in line]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the node-architecture case is written for x86_64")
def test_the_nodes_own_architecture_is_downloaded_checked_and_unpacked_once(runner, release_server, tmp_path):
    checksums = release_server["checksums"]
    first = install(runner, release_server, tmp_path, etcd_release_checksums=checksums)
    assert first.returncode == 0, first.stdout[-3000:]
    etcd = tmp_path / VERSION / "etcd"
    assert etcd.read_text().split()[-1] == "amd64"
    assert os.access(etcd, os.X_OK)
    again = install(runner, release_server, tmp_path, etcd_release_checksums=checksums)
    assert again.returncode == 0, again.stdout[-3000:]
    assert '"changed": true' not in again.stdout, "a second install changed something"


def test_another_architecture_takes_its_own_tarball_and_checksum(runner, release_server, tmp_path):
    result = install(runner, release_server, tmp_path, etcd_release_arch="arm64",
                     etcd_release_checksums=release_server["checksums"])
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / VERSION / "etcdctl").read_text().split()[-1] == "arm64"
    assert (tmp_path / f"etcd-v{VERSION}-linux-arm64.tar.gz").exists()


def test_a_wrong_checksum_is_refused_and_nothing_is_unpacked(runner, release_server, tmp_path):
    wrong = {"arm64": release_server["checksums"]["amd64"]}
    result = install(runner, release_server, tmp_path, etcd_release_arch="arm64", etcd_release_checksums=wrong)
    assert result.returncode != 0
    assert "checksum" in result.stdout.lower(), result.stdout[-3000:]
    assert not (tmp_path / VERSION / "etcd").exists()


def test_an_architecture_without_a_checksum_is_refused_with_its_name(runner, release_server, tmp_path):
    result = install(runner, release_server, tmp_path, etcd_release_arch="arm64",
                     etcd_release_checksums={"amd64": release_server["checksums"]["amd64"]})
    assert result.returncode != 0
    assert "etcd_release_checksums['arm64']" in result.stdout, result.stdout[-3000:]


def test_the_roles_argument_check_needs_no_facts(runner, tmp_path):
    # The argument check renders every option, etcd_release_url included, before any fact exists;
    # the role then stops at its own check (this host is in no etcd group), not at a missing fact.
    result = runner.run([{"name": "etcd", "ansible.builtin.include_role": {"name": "etcdfleet.cluster.etcd"}}],
                        play_vars={"etcd_data_dir": str(tmp_path / "data")})
    assert result.returncode != 0
    assert "must be in the group" in result.stdout, result.stdout[-3000:]
    assert "no attribute 'architecture'" not in result.stdout, result.stdout[-3000:]
