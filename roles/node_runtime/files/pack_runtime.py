# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Packs the node runtime (the collection's library and the node daemons) into one gzipped tar
archive, so that the node_runtime role installs it in one transfer instead of one per file.

Usage: python3 pack_runtime.py ARCHIVE < members.json, where members.json is a list of
``[name in the archive, file on the controller]`` pairs. Files are 0644 and directories 0755,
owned by root; every member is stamped with the current time, so that Python on the node never
trusts a bytecode cache written for an earlier version of a file of the same size."""

from __future__ import annotations

import io
import json
import posixpath
import sys
import tarfile
import time


def _info(name, mode, now, kind=tarfile.REGTYPE, size=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = now
    info.uid = info.gid = 0
    info.uname = info.gname = 'root'
    info.size = size
    return info


def parents(name):
    """The directories above an archive member, outermost first."""
    found = []
    parent = posixpath.dirname(name)
    while parent:
        found.append(parent)
        parent = posixpath.dirname(parent)
    return list(reversed(found))


def check_name(name):
    """Refuses archive names that would land outside the directory they are unpacked into."""
    if not name or name.startswith('/') or '..' in name.split('/') or '\\' in name:
        raise ValueError('refusing archive member name %r' % (name,))
    return name


def pack(archive, members, now=None):
    """Writes the archive; returns the number of files in it."""
    now = int(time.time() if now is None else now)
    seen = set()
    with tarfile.open(archive, 'w:gz', format=tarfile.PAX_FORMAT) as tar:
        for name, source in sorted(members):
            check_name(name)
            for directory in parents(name):
                if directory not in seen:
                    seen.add(directory)
                    tar.addfile(_info(directory, 0o755, now, kind=tarfile.DIRTYPE))
            with open(source, 'rb') as handle:
                data = handle.read()
            tar.addfile(_info(name, 0o644, now, size=len(data)), io.BytesIO(data))
    return len(members)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.stderr.write('usage: pack_runtime.py ARCHIVE < members.json\n')
        return 2
    count = pack(argv[0], json.load(sys.stdin))
    sys.stdout.write('%d files\n' % count)
    return 0


if __name__ == '__main__':
    sys.exit(main())
