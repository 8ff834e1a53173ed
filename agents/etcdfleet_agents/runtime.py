# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every node daemon shares: settings, logging, signals, backoff.

A daemon is a subclass of ``Daemon`` that implements ``run_once()`` (one reconcile pass, used by
tests and by ``--once``) and ``serve()`` (the event-driven loop, returning when ``self.stopping``
is set). ``cli()`` parses the common arguments, sets up logging (one line per action, to stderr,
which systemd sends to the journal), installs SIGTERM/SIGINT handlers that set ``stopping``, and
runs ``serve()`` under ``retrying()``, which logs a failure and retries with capped exponential
backoff, so a daemon outlives restarts of etcd and Docker.

etcd is reached with the settings of /etc/etcdfleet/etcd.env (written by the role), read from the
environment (systemd's EnvironmentFile for services; the file ETCDFLEET_ENV_FILE names, for
commands such as fleetctl): ETCDFLEET_ENDPOINTS (comma separated), ETCDFLEET_API_VERSION (v2 or v3),
ETCDFLEET_CA_CERT, ETCDFLEET_CLIENT_CERT, ETCDFLEET_CLIENT_KEY, ETCDFLEET_USERNAME,
ETCDFLEET_PASSWORD and ETCDFLEET_TIMEOUT.

Under systemd (Type=notify) a daemon says ``ready()`` once it is in step with what it follows,
and ``set_status()`` when that changes (``systemctl status`` shows it). Its loops call ``alive()``
at least every ``tick`` seconds; a supervising thread sends the watchdog's keep-alive only while
every loop does, so a daemon whose loop hangs is restarted by systemd (WatchdogSec=), with the
stacks of its threads in the journal. A daemon that cannot get in step (etcd or Docker away)
still says it is ready after READY_TIMEOUT seconds, with a status saying why: its start must not
fail, as it is the one that will catch up when they return.

The clients of one daemon share an EndpointHealth: a member one of them found unreachable is
tried last by all of them for a while.

Settings: a setting that cannot work raises ``SettingsError`` (a ValueError) with a message
naming the setting and the value. ``cli()`` (every daemon's entry point) reports it, like any
ValueError, RuntimeError or EtcdError raised while the daemon is set up, as one line
``<daemon>: <message>`` on stderr and exits with status 2, never with a traceback.
``read_settings_file()`` reads a JSON settings file, ``read_env_file()`` a systemd
EnvironmentFile, ``env_setting()`` / ``env_flag()`` one ``<PREFIX><NAME>`` variable.
"""

import argparse
import json
import logging
import os
import random
import faulthandler
import signal
import sys
import tempfile
import threading
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EndpointHealth, EtcdClient, EtcdError

from etcdfleet_agents.systemd import notify as sd

ENV_PREFIX = "ETCDFLEET_"
CLIENT_SETTINGS = {
    "endpoints": "ENDPOINTS",
    "api_version": "API_VERSION",
    "ca_cert": "CA_CERT",
    "client_cert": "CLIENT_CERT",
    "client_key": "CLIENT_KEY",
    "username": "USERNAME",
    "password": "PASSWORD",
    "timeout": "TIMEOUT",
}


class SettingsError(ValueError):
    """A setting that cannot work: missing or unreadable file, bad JSON, bad value (the message
    names the setting and the value)."""


def error_text(exc, limit=300):
    """An exception's message on one line, cut at ``limit`` characters (for log lines)."""
    text = str(exc).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


def write_atomic(path, text, mode=0o644):
    """Replace ``path`` with ``text`` in one step (a temporary file in the same directory,
    renamed over it), so a reader never sees half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def close_quietly(resource):
    """Close a client, stream or store on the way out; a failure to close changes nothing."""
    try:
        resource.close()
    except Exception:  # pylint: disable=broad-except
        pass


def env_setting(environ, prefix, name, default=None):
    """The stripped value of ``<prefix><name>`` in ``environ``; ``default`` when unset or empty."""
    value = environ.get(prefix + name)
    return default if value is None or value.strip() == "" else value.strip()


def env_flag(environ, prefix, name):
    """True when ``<prefix><name>`` is 1, true, yes or on."""
    return (env_setting(environ, prefix, name, "") or "").lower() in ("1", "true", "yes", "on")


def read_settings_file(path):
    """The JSON document of a settings file; SettingsError when it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise SettingsError("cannot read the settings file %s: %s" % (path, exc.strerror or exc))
    except ValueError as exc:
        raise SettingsError("settings file %s is not valid JSON: %s" % (path, exc))


def read_env_file(path, base=None):
    """``base`` (default os.environ) plus the ``KEY=VALUE`` lines of ``path`` (systemd
    EnvironmentFile syntax without line continuations; quotes around a value are removed)."""
    environ = dict(os.environ if base is None else base)
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            key, value = line.split("=", 1)
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            environ[key.strip()] = value
    return environ


def node_environ(environ=None):
    """The environment with this node's etcd settings: the file ETCDFLEET_ENV_FILE names (written by
    the role, read as systemd reads an EnvironmentFile) over ``environ``, when it is set. Commands
    run by hand or by the roles (fleetctl, settings checks) read the settings this way, never by
    letting a shell run the file."""
    environ = os.environ if environ is None else environ
    path = environ.get(ENV_PREFIX + "ENV_FILE", "")
    if not path:
        return environ
    try:
        return read_env_file(path, environ)
    except OSError as exc:
        raise SettingsError("cannot read the settings file %s (ETCDFLEET_ENV_FILE): %s" % (path, error_text(exc)))


def client_settings(environ=None):
    """The etcd client's keyword arguments from ETCDFLEET_* variables (unset ones left out)."""
    environ = os.environ if environ is None else environ
    settings = {}
    for argument, name in CLIENT_SETTINGS.items():
        value = environ.get(ENV_PREFIX + name, "").strip()
        if value:
            settings[argument] = value
    if "endpoints" in settings:
        settings["endpoints"] = [e.strip() for e in settings["endpoints"].split(",") if e.strip()]
    return settings


# The daemon's clients share what they learn about unreachable members: once one request found a
# member gone, the others try it last instead of each waiting out its own timeout on it.
ENDPOINT_HEALTH = EndpointHealth()


def client_from_environ(environ=None, **overrides):
    """An EtcdClient set up from the ETCDFLEET_* variables; keyword arguments override them."""
    settings = client_settings(environ)
    settings.setdefault("health", ENDPOINT_HEALTH)
    settings.update(overrides)
    return EtcdClient(**settings)


# syslog priorities, as the journal reads them from a ``<N>`` prefix (sd-daemon(3))
JOURNAL_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def writes_to_journal(stream, environ=None):
    """True when ``stream`` is the journal's stream that systemd gave this service (JOURNAL_STREAM)."""
    environ = os.environ if environ is None else environ
    try:
        device, inode = (int(part) for part in environ.get("JOURNAL_STREAM", "").split(":"))
        status = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


class JournalFormatter(logging.Formatter):
    """``LEVEL message`` behind the record's syslog priority, so ``journalctl -p warning`` finds
    warnings and errors (systemd strips the prefix)."""

    def format(self, record):
        priority = next((p for level, p in JOURNAL_PRIORITIES if record.levelno >= level), 7)
        return "<%d>%s" % (priority, super().format(record))


def setup_logging(name, level="INFO", stream=None, environ=None):
    """One line per record on stderr; systemd's journal adds the time and the unit, and takes the
    priority from each line when stderr is the journal's stream."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    formatter = JournalFormatter if writes_to_journal(stream, environ) else logging.Formatter
    handler.setFormatter(formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    # python-etcd logs each failed request at ERROR; the client layer reports a failure once, as
    # the daemon's own line
    logging.getLogger("etcd.client").setLevel(logging.CRITICAL)
    return logging.getLogger(name)


class Backoff(object):
    """Capped exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... up to ``cap`` seconds."""

    def __init__(self, first=0.5, cap=10.0):
        self.first = first
        self.cap = cap
        self.attempt = 0

    def reset(self):
        self.attempt = 0

    def next_delay(self):
        delay = min(self.cap, self.first * (2 ** self.attempt))
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)


# Longest wait of a daemon's loop between two alive() calls, without a watchdog or a short one
TICK = 5.0
# Seconds after the start when a daemon that is not yet in step says it is ready anyway
READY_TIMEOUT = 10.0


class Daemon(object):
    """Base of the node daemons. Subclasses set ``name`` and implement run_once() and serve()."""

    name = "daemon"

    def __init__(self, args=None, environ=None):
        self.args = args
        self.environ = os.environ if environ is None else environ
        self.stopping = threading.Event()
        self.log = logging.getLogger(self.name)
        self.watchdog = sd.watchdog_seconds(os.environ)
        # Loops wait at most this long between alive() calls: a quarter of the watchdog's period
        self.tick = min(TICK, self.watchdog / 4.0) if self.watchdog else TICK
        self.is_ready = False
        self.status = None
        self._beats = {}

    # Subclasses --------------------------------------------------------------------------------
    def run_once(self):
        """One full reconcile pass."""
        raise NotImplementedError

    def serve(self):
        """Follow events until self.stopping is set; may raise to be restarted with backoff."""
        raise NotImplementedError

    def cleanup(self):
        """Called once when the daemon stops."""

    @classmethod
    def add_arguments(cls, parser):
        """Daemon-specific command-line arguments."""

    # Shared ------------------------------------------------------------------------------------
    def sleep(self, seconds):
        """Sleep that ends early when the daemon is asked to stop; returns True when stopping."""
        return self.stopping.wait(seconds)

    # Service manager ----------------------------------------------------------------------------
    def ready(self, status=None):
        """Tell systemd the daemon is in step (once), and what it is doing."""
        if status is not None:
            self.set_status(status)
        if not self.is_ready:
            self.is_ready = True
            sd.notify("READY=1")

    def set_status(self, text):
        """The one-line status ``systemctl status`` shows; sent when it changes."""
        text = sd.status_text(text)
        if text != self.status:
            self.status = text
            sd.notify("STATUS=" + text)

    def alive(self, loop="main"):
        """A loop of the daemon made progress: the watchdog keeps being fed while every loop
        that called this does so at least every half watchdog period."""
        self._beats[loop] = time.monotonic()

    def pause(self, seconds, loop="main", event=None):
        """Wait up to ``seconds`` for ``event`` (default: stopping), calling alive(loop) every
        tick on the way; True when the event is set."""
        event = self.stopping if event is None else event
        deadline = time.monotonic() + seconds
        while True:
            self.alive(loop)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return event.is_set()
            if event.wait(min(remaining, self.tick)):
                return True

    def idle(self, loop="main"):
        """A loop ended (or waits on purpose): no longer watched."""
        self._beats.pop(loop, None)

    def stalled_loops(self, now=None):
        """The loops that have not called alive() within half the watchdog's period."""
        if not self.watchdog:
            return []
        now = time.monotonic() if now is None else now
        limit = self.watchdog / 2.0
        return sorted(loop for loop, beat in list(self._beats.items()) if now - beat > limit)

    def supervise(self, started=None):
        """The supervising thread: ready after READY_TIMEOUT at the latest, and the watchdog's
        keep-alive while no loop stalls (one warning when one does)."""
        started = time.monotonic() if started is None else started
        reported = False
        period = min(self.tick, READY_TIMEOUT)
        while not self.stopping.wait(period / 2.0):
            now = time.monotonic()
            if not self.is_ready and now - started >= READY_TIMEOUT:
                self.log.warning("not in step after %ds: reporting ready, still trying", READY_TIMEOUT)
                self.ready(self.status or "starting: not yet in step")
            stalled = self.stalled_loops(now)
            if not stalled:
                reported = False
                if self.watchdog:
                    sd.notify("WATCHDOG=1")
            elif not reported:
                reported = True
                self.log.error("loop(s) %s made no progress for %.0fs: no longer feeding the watchdog",
                               ", ".join(stalled), self.watchdog / 2.0)

    def stop(self, *_ignored):
        if not self.stopping.is_set():
            self.log.info("stopping")
        self.stopping.set()

    def retrying(self, step):
        """Run ``step`` until stopping; log each failure in one line and retry with backoff."""
        backoff = Backoff()
        while not self.stopping.is_set():
            try:
                step()
                backoff.reset()
                if not self.stopping.is_set():
                    # serve() returned on its own: start it again at once.
                    continue
            except Exception as exc:  # pylint: disable=broad-except
                delay = backoff.next_delay()
                self.log.warning("%s failed: %s: %s; retrying in %.1fs", step.__name__,
                                 type(exc).__name__, exc, delay)
                self.set_status("retrying: %s: %s" % (type(exc).__name__, error_text(exc)))
                self.pause(delay)

    def main_loop(self, once=False):
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        try:
            if once:
                self.run_once()
            else:
                self.log.info("starting")
                if sd.notify_address() is not None:
                    # a watchdog abort (SIGABRT) leaves every thread's stack in the journal
                    faulthandler.enable()
                    threading.Thread(target=self.supervise, name="supervise", daemon=True).start()
                self.retrying(self.serve)
        finally:
            if not once:
                sd.notify("STOPPING=1")
            self.cleanup()
            self.log.info("stopped")
        return 0


def cli(daemon_class, argv=None, environ=None):
    """Entry point of a daemon module: parse arguments, set up logging and the daemon, run it.

    A setting that cannot work ends the daemon with one line on stderr and exit status 2, not a
    traceback: while the daemon is set up, and whenever a ``SettingsError`` is raised later. Any
    other failure of the running daemon is the loop's to log and retry.
    """
    parser = argparse.ArgumentParser(prog=daemon_class.name, description=daemon_class.__doc__)
    parser.add_argument("--once", action="store_true", help="do one reconcile pass and exit")
    parser.add_argument("--log-level", default=os.environ.get(ENV_PREFIX + "LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    daemon_class.add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(daemon_class.name, args.log_level)
    try:
        daemon = daemon_class(args=args, environ=node_environ(environ))
    except (ValueError, RuntimeError, EtcdError) as exc:  # SettingsError is a ValueError
        return settings_failed(daemon_class.name, exc)
    try:
        return daemon.main_loop(once=args.once)
    except SettingsError as exc:
        return settings_failed(daemon_class.name, exc)


def settings_failed(name, exc):
    """Report a setting that cannot work in one line; the exit status of such a failure."""
    sys.stderr.write("%s: %s\n" % (name, exc))
    return 2
