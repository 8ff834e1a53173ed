# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node runtime's archive: every file at its name, root's, 0644 in 0755 directories, stamped
now (a bytecode cache of an earlier file of the same size is never trusted), and no member that
would land outside the directory it is unpacked into."""

import json
import pathlib
import subprocess
import sys
import tarfile

import pytest

PACK = pathlib.Path(__file__).resolve().parents[3] / 'roles' / 'node_runtime' / 'files' / 'pack_runtime.py'


def run_pack(archive, members):
    return subprocess.run([sys.executable, str(PACK), str(archive)], input=json.dumps(members),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=60, check=False)


def test_members_modes_and_times(tmp_path):
    (tmp_path / 'a.py').write_text('A = 1\n')
    (tmp_path / 'b.py').write_bytes(b'B = "\xc3\xa9"\n')
    archive = tmp_path / 'runtime.tar.gz'
    done = run_pack(archive, [['pkg/sub/b.py', str(tmp_path / 'b.py')], ['pkg/a.py', str(tmp_path / 'a.py')]])
    assert done.returncode == 0, done.stderr
    assert done.stdout == '2 files\n'
    with tarfile.open(str(archive)) as tar:
        entries = {m.name: m for m in tar.getmembers()}
        assert sorted(entries) == ['pkg', 'pkg/a.py', 'pkg/sub', 'pkg/sub/b.py']
        assert tar.extractfile('pkg/sub/b.py').read() == (tmp_path / 'b.py').read_bytes()
    for name, entry in entries.items():
        assert (entry.uid, entry.gid, entry.uname) == (0, 0, 'root')
        assert entry.mode == (0o755 if entry.isdir() else 0o644), name
        assert entry.mtime >= (tmp_path / 'a.py').stat().st_mtime - 1


@pytest.mark.parametrize('name', ['/etc/passwd', '../x.py', 'pkg/../../x.py', '', 'a\\b.py'])
def test_names_outside_the_directory_are_refused(tmp_path, name):
    (tmp_path / 'a.py').write_text('')
    done = run_pack(tmp_path / 'x.tar.gz', [[name, str(tmp_path / 'a.py')]])
    assert done.returncode != 0
    assert 'refusing archive member name' in done.stderr


def test_usage(tmp_path):
    done = subprocess.run([sys.executable, str(PACK)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=60, check=False)
    assert done.returncode == 2 and 'usage' in done.stderr
