# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy driven by a Jinja2 template: render, check, install, reload.

The one HAProxy mechanism of the node daemons (docker_discover's watcher; an ambassador can drive
its own HAProxy instance with the same pieces):

``Template``     a Jinja2 template file, read again on every render (so an edited file is used at
                 the next change), with the filters ``haproxy_quote`` and ``haproxy_ident``.
``Haproxy``      one HAProxy configuration file and the commands around it: ``check`` writes a
                 candidate next to the live file and runs ``haproxy -c`` on it, ``install`` moves a
                 checked candidate into place atomically, ``save_server_state`` dumps ``show
                 servers state`` from the runtime socket into the ``server-state-file`` (so health
                 state survives the reload), ``reload`` runs the reload command (by default
                 ``systemctl reload-or-restart haproxy``: HAProxy's master-worker mode hands the
                 listening sockets to the new worker, no connection is refused).
``Updater``      render -> compare -> check -> install -> reload. A configuration that does not
                 render or that ``haproxy -c`` rejects is never installed: the live one keeps
                 serving and the result says why. A render equal to the live file reloads nothing.
``MasterWorker`` an ``Haproxy`` whose process is the daemon's own child (``haproxy -W``, for a
                 daemon that owns its HAProxy instead of the node's haproxy.service): its first
                 reload starts it, later ones send SIGUSR2 (the master hands the listening sockets
                 to the new worker), ``stop`` ends it.

Nothing here logs: ``Updater.apply`` returns an ``ApplyResult`` and the daemon writes one line.
"""

import hashlib
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
from typing import NamedTuple, Optional

try:
    import jinja2
    HAS_JINJA2 = True
    JINJA2_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    jinja2 = None
    HAS_JINJA2 = False
    JINJA2_IMPORT_ERROR = _exc

DEFAULT_BINARY = "haproxy"
DEFAULT_RELOAD_COMMAND = ("systemctl", "reload-or-restart", "haproxy.service")

# Results of Updater.apply
UNCHANGED = "unchanged"
RELOADED = "reloaded"
RENDER_FAILED = "render-failed"
INVALID = "invalid"
RELOAD_FAILED = "reload-failed"

_IDENT_BAD = re.compile(r"[^A-Za-z0-9_.:-]")
_MAX_OUTPUT = 2000


class HaproxyError(Exception):
    """Base of the errors of this module; ``str()`` is a one-line message."""


class TemplateError(HaproxyError):
    """The template is missing, unreadable, not valid Jinja2, or failed while rendering."""


class ConfigInvalid(HaproxyError):
    """``haproxy -c`` rejected a candidate configuration. ``output`` holds its messages and
    ``path`` the rejected file (kept for inspection)."""

    def __init__(self, message, output="", path=None):
        super(ConfigInvalid, self).__init__(message)
        self.output = output
        self.path = path


class ReloadFailed(HaproxyError):
    """The reload command failed; the new file is installed but may not be running yet."""


def _one_line(text, limit=_MAX_OUTPUT):
    text = " | ".join(line.strip() for line in (text or "").splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit] + "..."


def haproxy_quote(value):
    """Quote one word for an HAProxy configuration line.

    Single quotes keep everything literal; a value containing a single quote is written in double
    quotes with ``\\``, ``"`` and ``$`` escaped. Newlines cannot be written and raise ValueError.
    """
    text = str(value)
    if "\n" in text or "\r" in text or "\x00" in text:
        raise ValueError("a value written into the HAProxy configuration must be one line: %r" % text)
    if "'" not in text:
        return "'%s'" % text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")


def haproxy_ident(text):
    """``text`` as an HAProxy proxy or server name: characters other than letters, digits and
    ``_.:-`` become ``_``."""
    result = _IDENT_BAD.sub("_", str(text))
    return result or "_"


def digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


class Template(object):
    """A Jinja2 template file rendered with strict undefined variables."""

    def __init__(self, path):
        self.path = path

    def source(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                return handle.read()
        except OSError as exc:
            raise TemplateError("cannot read the template %s: %s" % (self.path, exc.strerror or exc))
        except UnicodeDecodeError as exc:
            raise TemplateError("template %s is not UTF-8 text: %s" % (self.path, exc))

    def render(self, context):
        if not HAS_JINJA2:
            raise TemplateError("the Python library jinja2 (Debian: python3-jinja2) is required: %s"
                                % JINJA2_IMPORT_ERROR)
        source = self.source()
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True,
                                 lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
        env.filters["haproxy_quote"] = haproxy_quote
        env.filters["haproxy_ident"] = haproxy_ident
        try:
            template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError("template %s line %s: %s" % (self.path, exc.lineno, exc.message))
        try:
            text = template.render(**context)
        except jinja2.TemplateError as exc:
            raise TemplateError("template %s failed to render: %s" % (self.path, exc))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise TemplateError("template %s failed to render: %s: %s" % (self.path, type(exc).__name__, exc))
        if not text.endswith("\n"):
            text += "\n"
        return text


class Haproxy(object):
    """One HAProxy configuration file and the commands that check and reload it.

    ``reload_command`` is an argument list (default ``systemctl reload-or-restart
    haproxy.service``); tests running HAProxy as a child in master-worker mode (``-W``) use
    ``kill -USR2 <master pid>``. ``runtime_socket`` and ``server_state_file``, when both set,
    make every reload keep the servers' health state.
    """

    def __init__(self, config_path, binary=DEFAULT_BINARY, reload_command=DEFAULT_RELOAD_COMMAND,
                 runtime_socket=None, server_state_file=None, command_timeout=30.0):
        self.config_path = config_path
        self.binary = binary
        self.reload_command = list(reload_command) if reload_command else []
        self.runtime_socket = runtime_socket
        self.server_state_file = server_state_file
        self.command_timeout = command_timeout

    @property
    def rejected_path(self):
        return self.config_path + ".rejected"

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
            os.chmod(candidate, 0o644)
            code, output = self._run([self.binary, "-c", "-f", candidate])
        except BaseException:
            _unlink(candidate)
            raise
        if code != 0:
            os.replace(candidate, self.rejected_path)
            output = output.replace(candidate, self.rejected_path)
            alerts = [line for line in output.splitlines() if "[ALERT]" in line]
            message = _one_line("\n".join(alerts) if alerts else output)
            raise ConfigInvalid("haproxy -c rejected the configuration (exit %d): %s"
                                % (code, message or "no message"), output=output, path=self.rejected_path)
        return candidate

    def install(self, candidate):
        """Move a checked candidate over the live file (atomic rename)."""
        os.replace(candidate, self.config_path)
        _unlink(self.rejected_path)

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
        _write_atomic(self.server_state_file, data)
        return True

    def reload(self):
        """Run the reload command; raise ReloadFailed with its output when it fails."""
        if not self.reload_command:
            return
        code, output = self._run(self.reload_command)
        if code != 0:
            raise ReloadFailed("%s failed (exit %d): %s"
                               % (" ".join(self.reload_command), code, _one_line(output) or "no message"))


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
            process = subprocess.Popen([self.binary, "-W", "-f", self.config_path], stdin=subprocess.DEVNULL)
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
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    return b"".join(chunks).decode("utf-8", "replace")


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_atomic(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


class ApplyResult(NamedTuple):
    """What ``Updater.apply`` did.

    action   unchanged | reloaded | render-failed | invalid | reload-failed
    message  one line saying why (errors) or what (reload), empty when unchanged
    digest   short hash of the rendered text (None when it did not render)
    state_saved  whether server state was saved before the reload
    """
    action: str
    message: str = ""
    digest: Optional[str] = None
    state_saved: bool = False

    @property
    def ok(self):
        return self.action in (UNCHANGED, RELOADED)


class Updater(object):
    """Turns a template context into a running HAProxy configuration, safely.

    A failed reload is retried at the next ``apply`` even when the render is unchanged.
    """

    def __init__(self, template, haproxy):
        self.template = template
        self.haproxy = haproxy
        self.reload_pending = False

    def render(self, context):
        return self.template.render(context)

    def check(self, context):
        """Render and check without installing; returns the text or raises TemplateError /
        ConfigInvalid (the candidate is removed either way)."""
        text = self.render(context)
        candidate = self.haproxy.check(text)
        _unlink(candidate)
        return text

    def apply(self, context):
        try:
            text = self.render(context)
        except TemplateError as exc:
            return ApplyResult(RENDER_FAILED, str(exc))
        text_digest = digest(text)
        if text == self.haproxy.current() and not self.reload_pending:
            return ApplyResult(UNCHANGED, "", text_digest)
        try:
            candidate = self.haproxy.check(text)
        except ConfigInvalid as exc:
            return ApplyResult(INVALID, "%s (rejected file: %s)" % (exc, exc.path), text_digest)
        self.haproxy.install(candidate)
        saved = False
        try:
            saved = self.haproxy.save_server_state()
        except OSError:
            saved = False
        try:
            self.haproxy.reload()
        except ReloadFailed as exc:
            self.reload_pending = True
            return ApplyResult(RELOAD_FAILED, str(exc), text_digest, saved)
        self.reload_pending = False
        return ApplyResult(RELOADED, "", text_digest, saved)
