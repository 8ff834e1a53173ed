# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""systemd as the fleet agent uses it: unit files in a runtime directory, ``systemctl``.

The agent's one edge to systemd: writing and linking unit files, starting,
stopping and reloading, and reading load/active/sub states in one call.
"""

import logging
import os
import re
import subprocess

from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_names import is_valid_unit_name

ACTIVE_OR_STARTING = ('active', 'activating', 'reloading')
# what systemctl start says of a unit file systemd did not (properly) read on demand
_NEEDS_RELOAD = re.compile(r'not found|failed to load properly')


class SystemdError(Exception):
    """A systemctl call failed."""


class Systemd(object):
    """systemd as the agent uses it, through ``systemctl``.

    ``unit_dir`` holds the unit files the agent wrote; each is linked into
    ``link_dir`` (systemd's runtime unit directory).
    """

    def __init__(self, unit_dir='/run/fleet/units', link_dir='/run/systemd/system',
                 systemctl='systemctl', timeout=30, log=None):
        self.unit_dir = unit_dir
        self.link_dir = link_dir
        self.systemctl = systemctl
        self.timeout = timeout
        self.log = log or logging.getLogger('fleet.systemd')

    def _run(self, *args, check=True):
        argv = [self.systemctl] + list(args)
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SystemdError('%s failed: %s' % (' '.join(argv), exc))
        if check and proc.returncode != 0:
            raise SystemdError('%s failed (exit %d): %s' % (' '.join(argv), proc.returncode,
                                                            proc.stderr.strip()))
        return proc

    def local_units(self):
        """``{name: text}`` of the unit files in ``unit_dir``."""
        result = {}
        try:
            names = os.listdir(self.unit_dir)
        except FileNotFoundError:
            return result
        for name in names:
            if not is_valid_unit_name(name):
                continue
            path = os.path.join(self.unit_dir, name)
            try:
                with open(path, 'r', encoding='utf-8') as handle:
                    result[name] = handle.read()
            except OSError:
                continue
        return result

    def write(self, name, text):
        """Write and link one unit file."""
        os.makedirs(self.unit_dir, mode=0o755, exist_ok=True)
        os.makedirs(self.link_dir, mode=0o755, exist_ok=True)
        path = os.path.join(self.unit_dir, name)
        tmp = path + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        link = os.path.join(self.link_dir, name)
        if os.path.islink(link) and os.readlink(link) == path:
            return
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(path, link)

    def remove(self, name):
        """Unlink and delete one unit file."""
        link = os.path.join(self.link_dir, name)
        path = os.path.join(self.unit_dir, name)
        if os.path.islink(link) and os.readlink(link) == path:
            os.unlink(link)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def daemon_reload(self):
        self._run('daemon-reload')

    def start(self, names):
        """Queue start jobs.  systemd (246 and later) loads a unit file it has not seen when a job
        asks for it, so new files need no daemon-reload.  Where that fails, systemd is reloaded
        and asked again: an older systemd answers "not found", and a unit whose file went and
        came back while its old process was still stopping "failed to load properly" (EBUSY)."""
        if not names:
            return
        proc = self._run('start', '--no-block', *names, check=False)
        if proc.returncode != 0 and _NEEDS_RELOAD.search(proc.stderr):
            self.log.info('systemd could not load new unit files on demand (%s): reloading it',
                          proc.stderr.strip().splitlines()[0])
            self.daemon_reload()
            proc = self._run('start', '--no-block', *names, check=False)
        if proc.returncode != 0:
            raise SystemdError('systemctl start --no-block %s failed (exit %d): %s'
                               % (' '.join(names), proc.returncode, proc.stderr.strip()))

    def restart(self, names):
        if names:
            self._run('restart', '--no-block', *names)

    def stop(self, names, block=False):
        if names:
            if block:
                self._run('stop', *names, check=False)
            else:
                self._run('stop', '--no-block', *names, check=False)

    def reset_failed(self, names):
        if names:
            self._run('reset-failed', *names, check=False)

    def states(self, names):
        """``{name: (load_state, active_state, sub_state, main_pid)}``.

        One ``systemctl list-units`` answers for the units systemd holds in memory (a single
        call for systemd, where ``show`` costs one per unit; ``main_pid`` is then ``''``); only
        the units it does not list (not loaded now, or with a backslash, which it would read
        as a pattern escape) are asked with ``systemctl show``.
        """
        names = list(names)
        result = {}
        if not names:
            return result
        plain = [n for n in names if '\\' not in n]
        if plain:
            wanted = set(plain)
            proc = self._run('list-units', '--all', '--full', '--plain', '--no-legend', '--no-pager',
                             '--', *plain, check=False)
            for line in proc.stdout.splitlines():
                parts = line.split(None, 4)
                if len(parts) >= 4 and parts[0] in wanted:
                    result[parts[0]] = (parts[1], parts[2], parts[3], '')
        rest = [n for n in names if n not in result]
        if not rest:
            return result
        proc = self._run('show', '--property=Id,LoadState,ActiveState,SubState,MainPID', '--', *rest,
                         check=False)
        blocks = proc.stdout.split('\n\n')
        for name, block in zip(rest, blocks):
            props = {}
            for line in block.splitlines():
                key, sep, value = line.partition('=')
                if sep:
                    props[key] = value
            result[name] = (props.get('LoadState', ''), props.get('ActiveState', ''),
                            props.get('SubState', ''), props.get('MainPID', ''))
        return result

    def system_state(self):
        """``systemctl is-system-running`` (``running``, ``degraded``, ``stopping``, ...)."""
        try:
            return self._run('is-system-running', check=False).stdout.strip()
        except SystemdError:
            return ''
