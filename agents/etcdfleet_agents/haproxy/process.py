# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An HAProxy process and its configuration file: check, install, save server state, reload."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

from etcdfleet_agents.haproxy.render import HaproxyError
from etcdfleet_agents.runtime import write_atomic
from etcdfleet_agents.systemd.notify import without_notify

DEFAULT_BINARY = "haproxy"
DEFAULT_RELOAD_COMMAND = ("systemctl", "reload-or-restart", "haproxy.service")

_MAX_OUTPUT = 2000

# A configuration may hold the stats page's password: only its owner (root, who starts HAProxy,
# or the account the watcher runs as) reads it, the live file and a rejected one alike.
CONFIG_MODE = 0o600


class ConfigInvalid(HaproxyError):
    """``haproxy -c`` rejected a candidate configuration. ``output`` holds its messages and
    ``path`` the rejected file (kept for inspection)."""

    def __init__(self, message, output="", path=None):
        super(ConfigInvalid, self).__init__(message)
        self.output = output
        self.path = path


class ReloadFailed(HaproxyError):
    """The reload command failed; the new file is installed but may not be running yet."""


# The master's line of the master CLI's ``show proc``: pid, type, reloads [failed: n], ...
_MASTER_LINE = re.compile(r"^\s*[0-9]+\s+master\s+([0-9]+)\s+\[failed:\s*([0-9]+)\]", re.MULTILINE)


def _one_line(text, limit=_MAX_OUTPUT):
    text = " | ".join(line.strip() for line in (text or "").splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit] + "..."


class Haproxy(object):
    """One HAProxy configuration file and the commands that check and reload it.

    ``reload_command`` is an argument list (default ``systemctl reload-or-restart
    haproxy.service``); tests running HAProxy as a child in master-worker mode (``-W``) use
    ``kill -USR2 <master pid>``. With ``master_socket`` (the master CLI, ``haproxy -S``) set, a
    reload is asked of the master there instead, so the caller needs no privilege beyond that
    socket: ``reload`` returns once ``show proc`` counts the reload, and fails when the master
    counts it as failed. ``runtime_socket`` and ``server_state_file``, when both set, make every
    reload keep the servers' health state.
    """

    def __init__(self, config_path, binary=DEFAULT_BINARY, reload_command=DEFAULT_RELOAD_COMMAND,
                 runtime_socket=None, server_state_file=None, command_timeout=30.0, master_socket=None):
        self.config_path = config_path
        self.binary = binary
        self.reload_command = list(reload_command) if reload_command else []
        self.master_socket = master_socket
        self.runtime_socket = runtime_socket
        self.server_state_file = server_state_file
        self.command_timeout = command_timeout

    @property
    def rejected_path(self):
        return self.config_path + ".rejected"

    @property
    def applied_path(self):
        return self.config_path + ".applied"

    def applied(self):
        """The digest of the configuration HAProxy was last reloaded with successfully (recorded
        by ``mark_applied``), or None when unknown: then what runs may differ from the file."""
        try:
            with open(self.applied_path, encoding="utf-8") as handle:
                return handle.read().strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def mark_applied(self, text_digest):
        """Record that HAProxy now runs the configuration with ``text_digest`` (survives restarts
        of the daemon, so a reload that failed before a restart is made after it)."""
        try:
            write_atomic(self.applied_path, text_digest + "\n")
        except OSError:
            remove_file(self.applied_path)

    def current(self):
        """The live configuration's text, or None when there is none (or it cannot be read)."""
        try:
            with open(self.config_path, encoding="utf-8") as handle:
                return handle.read()
        except (OSError, UnicodeDecodeError):
            return None

    def _run(self, argv):
        try:
            done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=self.command_timeout, check=False)
        except OSError as exc:
            return 127, "%s: %s" % (argv[0], exc.strerror or exc)
        except subprocess.TimeoutExpired:
            return 124, "%s did not finish within %ss" % (" ".join(argv), self.command_timeout)
        return done.returncode, done.stdout.decode("utf-8", "replace")

    def check(self, text):
        """Write ``text`` as a candidate next to the live file and check it with ``haproxy -c``.

        Returns the candidate's path (hand it to ``install``). Raises ConfigInvalid, keeping the
        rejected text in ``<config>.rejected``.
        """
        directory = os.path.dirname(os.path.abspath(self.config_path))
        fd, candidate = tempfile.mkstemp(prefix=".%s." % os.path.basename(self.config_path),
                                         suffix=".new", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(candidate, CONFIG_MODE)
            code, output = self._run([self.binary, "-c", "-f", candidate])
        except BaseException:
            remove_file(candidate)
            raise
        if code != 0:
            os.replace(candidate, self.rejected_path)
            output = output.replace(candidate, self.rejected_path)
            alerts = [line for line in output.splitlines() if "[ALERT]" in line]
            message = _one_line("\n".join(alerts) if alerts else output)
            raise ConfigInvalid("haproxy -c rejected the configuration (exit %d): %s"
                                % (code, message or "no message"), output=output, path=self.rejected_path)
        return candidate

    def restrict_modes(self):
        """Make the live and the rejected configuration readable by their owner only, where an
        earlier version left them readable by others (a configuration that does not change is not
        written again). Returns the paths changed."""
        changed = []
        for path in (self.config_path, self.rejected_path):
            try:
                if os.stat(path).st_mode & 0o077:
                    os.chmod(path, CONFIG_MODE)
                    changed.append(path)
            except FileNotFoundError:
                continue
            except PermissionError:
                # Another account's file (the watcher runs under its own): the role sets its mode.
                continue
        return changed

    def install(self, candidate):
        """Move a checked candidate over the live file (atomic rename)."""
        os.replace(candidate, self.config_path)
        remove_file(self.rejected_path)

    def save_server_state(self):
        """Dump the running servers' state into ``server_state_file``; returns False (and leaves
        the file alone) when HAProxy's runtime socket is not there or does not answer."""
        if not (self.runtime_socket and self.server_state_file):
            return False
        if not os.path.exists(self.runtime_socket):
            return False
        try:
            data = runtime_command(self.runtime_socket, "show servers state", timeout=5.0)
        except OSError:
            return False
        if not data.startswith("1\n") and not data.startswith("1\r\n"):
            # The dump starts with its format version; anything else is an error message.
            return False
        write_atomic(self.server_state_file, data)
        return True

    def reload(self):
        """Run the reload command (or ask the master CLI); raise ReloadFailed with its output
        when it fails."""
        if self.master_socket:
            self._reload_through_master()
            return
        if not self.reload_command:
            return
        code, output = self._run(self.reload_command)
        if code != 0:
            raise ReloadFailed("%s failed (exit %d): %s"
                               % (" ".join(self.reload_command), code, _one_line(output) or "no message"))

    def _master_reloads(self, deadline):
        """(reloads, failed reloads) as the master CLI's ``show proc`` counts them, asking again
        until ``deadline`` while the master does not answer (it refuses connections for a moment
        while it re-executes itself for a reload)."""
        while True:
            try:
                text = runtime_command(self.master_socket, "show proc", timeout=5.0)
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise ReloadFailed("HAProxy's master CLI %s does not answer: %s"
                                       % (self.master_socket, exc.strerror or exc)) from None
                time.sleep(0.02)
        match = _MASTER_LINE.search(text)
        if not match:
            raise ReloadFailed("HAProxy's master CLI %s answered 'show proc' with no master line: %s"
                               % (self.master_socket, _one_line(text) or "nothing"))
        return int(match.group(1)), int(match.group(2))

    def _reload_through_master(self):
        reloads, failed = self._master_reloads(time.monotonic() + min(5.0, self.command_timeout))
        try:
            runtime_command(self.master_socket, "reload", timeout=5.0)
        except OSError as exc:
            raise ReloadFailed("reload through HAProxy's master CLI %s failed: %s"
                               % (self.master_socket, exc.strerror or exc)) from None
        deadline = time.monotonic() + self.command_timeout
        while True:
            now_reloads, now_failed = self._master_reloads(deadline)
            if now_reloads > reloads:
                if now_failed > failed:
                    raise ReloadFailed("HAProxy's master could not load the new configuration "
                                       "(show proc counts a failed reload); the previous workers keep serving")
                return
            if time.monotonic() >= deadline:
                raise ReloadFailed("HAProxy's master CLI %s did not report the reload within %ss"
                                   % (self.master_socket, self.command_timeout))
            time.sleep(0.02)


class MasterWorker(Haproxy):
    """HAProxy in master-worker mode as a child of the calling daemon.

    ``reload`` starts the child when it is not running (so the first ``Updater.apply`` after a
    start, with ``reload_pending`` set, brings it up with the installed file) and otherwise sends
    SIGUSR2 to the master, which re-reads the file and hands the listening sockets to the new
    worker. ``on_exit(code)`` is called from a thread when the child ends without ``stop``.
    HAProxy's own messages go to the daemon's stderr (the journal).
    """

    def __init__(self, config_path, binary=DEFAULT_BINARY, runtime_socket=None, server_state_file=None,
                 command_timeout=30.0, on_exit=None):
        super(MasterWorker, self).__init__(config_path, binary=binary, reload_command=(),
                                           runtime_socket=runtime_socket, server_state_file=server_state_file,
                                           command_timeout=command_timeout)
        self.on_exit = on_exit
        self.process = None
        self._stopping = False

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self):
        return self.process.pid if self.running else None

    def start(self):
        """Start ``haproxy -W -f <config>``; raise ReloadFailed when it cannot be executed."""
        self._stopping = False
        try:
            # HAProxy does not speak for the daemon's service: no notification socket for it
            process = subprocess.Popen([self.binary, "-W", "-f", self.config_path], stdin=subprocess.DEVNULL,
                                       env=without_notify())
        except OSError as exc:
            raise ReloadFailed("cannot start %s: %s" % (self.binary, exc.strerror or exc))
        self.process = process
        threading.Thread(target=self._follow, args=(process,), name="haproxy %d" % process.pid,
                         daemon=True).start()
        return process.pid

    def _follow(self, process):
        code = process.wait()
        if not self._stopping and process is self.process and self.on_exit is not None:
            self.on_exit(code)

    def reload(self):
        if not self.running:
            self.start()
            return
        try:
            self.process.send_signal(signal.SIGUSR2)
        except OSError as exc:
            raise ReloadFailed("cannot signal HAProxy (pid %d): %s" % (self.process.pid, exc.strerror or exc))

    def stop(self, timeout=10.0):
        """Stop the child (SIGTERM: the worker finishes at once; SIGKILL after ``timeout``)."""
        self._stopping = True
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def runtime_command(path, command, timeout=5.0):
    """Send one command to an HAProxy runtime (stats) socket and return the answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(command.encode("ascii") + b"\n")
        # The master CLI answers once the request is complete (the admin socket does not mind).
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    return b"".join(chunks).decode("utf-8", "replace")


def remove_file(path):
    try:
        os.unlink(path)
    except OSError:
        pass
