# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docker-discover: HAProxy follows the services registered in etcd.

Reads ``<prefix>/<service>/<id>`` = ``ip:port`` (or ``{"host": ..., "port": ...}``) once, then
watches the prefix. After each burst of changes (debounced) it builds the catalog, picks the
services to expose (explicit list and/or naming rule), renders the HAProxy configuration from a
Jinja2 template, checks it with ``haproxy -c`` and, when it differs from the live file, installs
it and reloads HAProxy (master-worker: the listening sockets are kept; server state is saved
first). Bad entries are skipped with one warning each; a configuration that does not render or
check is never installed (the previous one keeps serving, the error is logged and written to the
status file).

Settings come from a JSON file (``--config``, written by the docker_discover role); etcd from
the ETCDFLEET_* environment (``/etc/etcdfleet/etcd.env``, or ``--env-file``).

    python3 -m etcdfleet_agents.discover --config /etc/etcdfleet/docker-discover.json
    ... --once                      one pass: read, render, install/reload, exit (1 on failure)
    ... --check [--template PATH]   render and check without installing (exit 1 on failure)
    ... --check-settings            validate the settings file only
"""

import copy
import datetime
import ipaddress
import json
import os
import re
import time

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import DEFAULT_PREFIX, normalize_prefix

from etcdfleet_agents import runtime
from etcdfleet_agents.haproxy.apply import RELOADED, UNCHANGED, Updater
from etcdfleet_agents.haproxy.process import CONFIG_MODE, DEFAULT_RELOAD_COMMAND, Haproxy
from etcdfleet_agents.haproxy.render import Template, build_context
from etcdfleet_agents.runtime import Backoff, SettingsError, read_env_file, read_settings_file
from etcdfleet_agents.services.catalog import (
    BALANCE_ALGORITHMS,
    DEFAULT_BALANCE,
    DEFAULT_MODE,
    MODES,
    build_catalog,
    parse_exposures,
    select_exposures,
)
from etcdfleet_agents.store import STORE_ERRORS, open_store

DEFAULT_CONFIG = "/etc/etcdfleet/docker-discover.json"

DEFAULTS = {
    "prefix": DEFAULT_PREFIX,
    "services": [],
    "rule": None,
    "default_mode": DEFAULT_MODE,
    "default_balance": DEFAULT_BALANCE,
    "bind_address": "*",
    "allow_hostnames": False,
    "debounce": 0.2,
    "max_delay": 2.0,
    "template": "/etc/etcdfleet/docker-discover/haproxy.cfg.j2",
    "status_file": "/run/etcdfleet/docker-discover/status.json",
    "retries": 3,
    "check": {"inter": "2s", "rise": 2, "fall": 2},
    "timeouts": {"connect": "5s", "client": "1m", "server": "1m", "check": "2s", "queue": "5s"},
    "stats": {"enabled": True, "bind": "127.0.0.1:1936", "uri": "/", "user": "", "password": "",
              "refresh": "10s", "realm": "HAProxy Statistics"},
    "haproxy": {
        "config": "/etc/haproxy/haproxy.cfg",
        "binary": "/usr/sbin/haproxy",
        "reload_command": list(DEFAULT_RELOAD_COMMAND),
        "master_socket": "",
        "runtime_socket": "/run/haproxy/admin.sock",
        "server_state_file": "/var/lib/haproxy/server-state",
        "user": "haproxy",
        "group": "haproxy",
        "chroot": "/var/lib/haproxy",
        "log": "/dev/log local0",
        "maxconn": 4096,
    },
    "vars": {},
}

_DURATION = re.compile(r"^[0-9]+(us|ms|s|m|h|d)?$")
_BIND_PORT = re.compile(r":([0-9]{1,5})$")


def _merge(defaults, given, where):
    if given is None:
        return copy.deepcopy(defaults)
    if not isinstance(given, dict):
        raise SettingsError("%s must be a mapping, got %r" % (where, given))
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise SettingsError("%s: unknown setting(s) %s" % (where, ", ".join(unknown)))
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        if isinstance(defaults[key], dict) and key != "vars":
            merged[key] = _merge(defaults[key], value, key if where == "settings" else "%s.%s" % (where, key))
        else:
            merged[key] = value
    return merged


def _number(value, where, minimum=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise SettingsError("%s must be a number >= %s, got %r" % (where, minimum, value))
    return float(value)


def _integer(value, where, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingsError("%s must be an integer >= %d, got %r" % (where, minimum, value))
    return value


def _duration(value, where):
    text = str(value)
    if isinstance(value, bool) or not _DURATION.match(text):
        raise SettingsError("%s must be an HAProxy time (like 500ms, 2s, 1m), got %r" % (where, value))
    return text


def _word(value, where, allow_empty=True):
    if not isinstance(value, str) or (not value and not allow_empty):
        raise SettingsError("%s must be a%s string, got %r" % (where, "" if allow_empty else " non-empty", value))
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise SettingsError("%s must be one line without control characters, got %r" % (where, value))
    return value


def _bind(value, where):
    _word(value, where, allow_empty=False)
    if " " in value.strip():
        raise SettingsError("%s must be one address:port, got %r" % (where, value))
    match = _BIND_PORT.search(value)
    if not match or not 0 < int(match.group(1)) < 65536:
        raise SettingsError("%s must end with :<port 1-65535>, got %r" % (where, value))
    return value.strip(), int(match.group(1))


def _loopback(bind):
    """Whether the host of an ``address:port`` bind is a loopback address (or ``localhost``)."""
    host = bind.rsplit(":", 1)[0]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(path=None, data=None):
    """Read and validate the settings (file at ``path`` or the mapping ``data``).

    Returns a dict with every setting (defaults filled in) plus ``exposure`` (the
    ExposureConfig). Raises SettingsError naming the bad setting and value.
    """
    if data is None:
        data = read_settings_file(path)
    settings = _merge(DEFAULTS, data, "settings")
    try:
        settings["prefix"] = normalize_prefix(settings["prefix"])
    except ValueError as exc:
        raise SettingsError("prefix: %s" % exc)
    if not settings["prefix"]:
        raise SettingsError("prefix must not be the root of the key space")
    if settings["default_mode"] not in MODES:
        raise SettingsError("default_mode must be one of %s, got %r" % (", ".join(MODES), settings["default_mode"]))
    if settings["default_balance"] not in BALANCE_ALGORITHMS:
        raise SettingsError("default_balance must be one of %s, got %r"
                            % (", ".join(BALANCE_ALGORITHMS), settings["default_balance"]))
    _word(settings["bind_address"], "bind_address", allow_empty=False)
    if not isinstance(settings["allow_hostnames"], bool):
        raise SettingsError("allow_hostnames must be true or false, got %r" % (settings["allow_hostnames"],))
    settings["debounce"] = _number(settings["debounce"], "debounce")
    settings["max_delay"] = _number(settings["max_delay"], "max_delay")
    if settings["max_delay"] < settings["debounce"]:
        raise SettingsError("max_delay (%s) must not be shorter than debounce (%s)"
                            % (settings["max_delay"], settings["debounce"]))
    _word(settings["template"], "template", allow_empty=False)
    _word(settings["status_file"], "status_file")
    settings["retries"] = _integer(settings["retries"], "retries")
    check = settings["check"]
    check["inter"] = _duration(check["inter"], "check.inter")
    check["rise"] = _integer(check["rise"], "check.rise", 1)
    check["fall"] = _integer(check["fall"], "check.fall", 1)
    for name in list(settings["timeouts"]):
        settings["timeouts"][name] = _duration(settings["timeouts"][name], "timeouts.%s" % name)
    stats = settings["stats"]
    if not isinstance(stats["enabled"], bool):
        raise SettingsError("stats.enabled must be true or false, got %r" % (stats["enabled"],))
    reserved = []
    if stats["enabled"]:
        stats["bind"], stats_port = _bind(stats["bind"], "stats.bind")
        reserved.append(stats_port)
    for field in ("uri", "user", "password", "realm"):
        _word(stats[field], "stats.%s" % field)
    stats["refresh"] = _duration(stats["refresh"], "stats.refresh")
    if stats["password"] and not stats["user"]:
        raise SettingsError("stats.password is set but stats.user is not")
    if stats["enabled"] and not _loopback(stats["bind"]) and not (stats["user"] and stats["password"]):
        raise SettingsError("stats.bind %r is not a loopback address: set stats.user and stats.password to "
                            "publish the statistics page there" % stats["bind"])
    if ":" in stats["user"]:
        raise SettingsError("stats.user must not contain ':', got %r" % stats["user"])
    if not stats["uri"].startswith("/"):
        raise SettingsError("stats.uri must start with '/', got %r" % stats["uri"])
    hap = settings["haproxy"]
    for field in ("config", "binary"):
        _word(hap[field], "haproxy.%s" % field, allow_empty=False)
    for field in ("master_socket", "runtime_socket", "server_state_file", "user", "group", "chroot", "log"):
        if hap[field] is None:
            hap[field] = ""
        _word(hap[field], "haproxy.%s" % field)
    hap["maxconn"] = _integer(hap["maxconn"], "haproxy.maxconn", 1)
    command = hap["reload_command"]
    if isinstance(command, str) or not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        raise SettingsError("haproxy.reload_command must be a list of strings, got %r" % (command,))
    if not isinstance(settings["vars"], dict):
        raise SettingsError("vars must be a mapping, got %r" % (settings["vars"],))
    try:
        settings["exposure"] = parse_exposures(settings["services"], settings["rule"], reserved_ports=reserved,
                                               default_mode=settings["default_mode"],
                                               default_balance=settings["default_balance"])
    except ValueError as exc:
        raise SettingsError(str(exc))
    return settings


class DockerDiscover(runtime.Daemon):
    """HAProxy follows the services registered in etcd."""

    name = "docker-discover"

    def __init__(self, args=None, environ=None, settings=None, store_factory=None):
        super(DockerDiscover, self).__init__(args=args, environ=environ)
        self.settings = settings
        self.store_factory = store_factory
        self.updater = None
        self.mirror = None
        self.exit_code = 0
        self._warned = set()
        self._failed = None
        self._failures = 0
        if settings is not None:
            self._setup(settings)

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--config", default=os.environ.get("ETCDFLEET_DISCOVER_CONFIG", DEFAULT_CONFIG),
                            help="settings file (JSON, default %(default)s)")
        parser.add_argument("--env-file", help="read ETCDFLEET_* settings from this file too")
        parser.add_argument("--template", help="use this template instead of the one in the settings")
        parser.add_argument("--check", action="store_true",
                            help="render from etcd and check with haproxy -c, install nothing")
        parser.add_argument("--check-settings", action="store_true", help="validate the settings file only")

    def _setup(self, settings):
        self.settings = settings
        hap = settings["haproxy"]
        template = getattr(self.args, "template", None) or settings["template"]
        self.updater = Updater(Template(template),
                               Haproxy(hap["config"], binary=hap["binary"], reload_command=hap["reload_command"],
                                       runtime_socket=hap["runtime_socket"] or None,
                                       server_state_file=hap["server_state_file"] or None,
                                       master_socket=hap["master_socket"] or None))

    def new_store(self):
        if self.store_factory is not None:
            return self.store_factory()
        return open_store(self.environ)

    # -- one pass --------------------------------------------------------------------------
    def _warn_new(self, messages):
        current = set(messages)
        for message in sorted(current - self._warned):
            self.log.warning("skipped %s", message)
        self._warned = current

    def context_for(self, values):
        settings = self.settings
        catalog = build_catalog(values.items(), settings["prefix"], settings["allow_hostnames"])
        exposures, rule_warnings = select_exposures(settings["exposure"], catalog.names())
        self._warn_new([str(w) for w in catalog.warnings] + list(rule_warnings))
        return build_context(settings, catalog, exposures)

    def update(self, values):
        """Render from ``values`` ({key: value} of the prefix) and apply; returns the ApplyResult."""
        context = self.context_for(values)
        result = self.updater.apply(context)
        summary = ", ".join("%s:%d=%d" % (s["name"], s["port"], len(s["servers"])) for s in context["services"])
        summary = summary or "no services"
        if result.ok and self._failures:
            self.log.info("recovered after %d failed attempt(s)", self._failures)
        if result.action == RELOADED:
            self.log.info("reloaded HAProxy with configuration %s (%s)%s", result.digest, summary,
                          "" if result.state_saved else "; no server state to keep")
        elif result.action == UNCHANGED:
            self.log.info("configuration %s unchanged (%s); no reload", result.digest, summary)
        elif (result.action, result.digest) != self._failed:
            self.log.error("%s: %s; the previous configuration keeps serving%s", result.action, result.message,
                           "; retrying with backoff" if self.updater.reload_pending else "")
        if result.ok:
            self._failed, self._failures = None, 0
        else:
            self._failed, self._failures = (result.action, result.digest), self._failures + 1
        self._write_status(result, context)
        return result

    def _write_status(self, result, context):
        path = self.settings["status_file"]
        if not path:
            return
        status = {
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "action": result.action,
            "ok": result.ok,
            "message": result.message,
            "digest": result.digest,
            "config": self.settings["haproxy"]["config"],
            "services": dict((s["name"], {"port": s["port"], "mode": s["mode"],
                                          "servers": [srv["address"] for srv in s["servers"]]})
                             for s in context["services"]),
            "warnings": sorted(self._warned),
        }
        try:
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(status, handle, indent=2, sort_keys=True)
                handle.write("\n")
            os.replace(tmp, path)
        except OSError as exc:
            self.log.warning("cannot write the status file %s: %s", path, exc)

    def run_once(self):
        store = self.new_store()
        try:
            values = store.watch(self.settings["prefix"]).load()
        finally:
            store.close()
        result = self.update(values)
        self.exit_code = 0 if result.ok else 1
        return self.exit_code

    def check(self):
        """--check: render from etcd (no servers when etcd cannot be read) and run haproxy -c."""
        values = {}
        try:
            store = self.new_store()
            try:
                values = store.watch(self.settings["prefix"]).load()
            finally:
                store.close()
        # STORE_ERRORS is a tuple of exception types, built from the backends
        except STORE_ERRORS as exc:  # pylint: disable=catching-non-exception
            self.log.warning("cannot read %s from etcd (%s); checking with no servers",
                             self.settings["prefix"], exc)
        context = self.context_for(values)
        try:
            self.updater.check(context)
        except Exception as exc:  # pylint: disable=broad-except
            self.log.error("check failed: %s", exc)
            return 1
        self.log.info("check passed: template %s renders a configuration haproxy accepts (%d service(s))",
                      self.updater.template.path, len(context["services"]))
        return 0

    # -- following -------------------------------------------------------------------------
    def serve(self):
        for path in self.updater.haproxy.restrict_modes():
            self.log.info("made %s readable by its owner only (mode %o)", path, CONFIG_MODE)
        store = self.new_store()
        mirror = store.watch(self.settings["prefix"])
        self.mirror = mirror
        try:
            values = mirror.load()
            self.log.info("read %d key(s) under %s at revision %s; watching", len(values),
                          self.settings["prefix"], mirror.revision)
            self.update(values)
            mirror.start()
            self.ready("watching %d key(s) under %s" % (len(values), self.settings["prefix"]))
            retry = Backoff(first=0.5, cap=30.0)
            retry_at = None
            while not self.stopping.is_set():
                self.alive()
                # A failed reload is retried with capped backoff while etcd stays quiet; the wait
                # ends at least every tick, so that the watchdog sees the loop alive.
                now = time.monotonic()
                if self.updater.reload_pending and retry_at is None:
                    retry_at = now + retry.next_delay()
                timeout = self.tick if retry_at is None else max(0.0, min(self.tick, retry_at - now))
                changes = mirror.wait(self.settings["debounce"], self.settings["max_delay"], timeout=timeout)
                if changes is None:
                    break
                if changes or (retry_at is not None and time.monotonic() >= retry_at):
                    retry_at = None
                    self.update(mirror.values)
                    self.set_status("watching %d key(s) under %s" % (len(mirror.values), self.settings["prefix"]))
                if not self.updater.reload_pending:
                    retry.reset()
        finally:
            if mirror.close():
                store.close()
            self.mirror = None

    def stop(self, *ignored):
        super(DockerDiscover, self).stop(*ignored)
        mirror = self.mirror
        if mirror is not None:
            mirror.interrupt()

    def settings_from_args(self, args):
        """The settings of this run: the ``--config`` file."""
        return load_settings(getattr(args, "config", DEFAULT_CONFIG))

    def main_loop(self, once=False):
        args = self.args
        if self.settings is None:
            try:
                if getattr(args, "env_file", None):
                    self.environ = read_env_file(args.env_file, self.environ)
                self._setup(self.settings_from_args(args))
            except (SettingsError, ValueError, OSError) as exc:
                self.log.error("%s", exc)
                return 2
        if getattr(args, "check_settings", False):
            self.log.info("settings are valid: %d service(s)%s", len(self.settings["exposure"].services),
                          " and a naming rule" if self.settings["exposure"].rule else "")
            return 0
        if getattr(args, "check", False):
            return self.check()
        code = super(DockerDiscover, self).main_loop(once=once)
        return self.exit_code if once else code
