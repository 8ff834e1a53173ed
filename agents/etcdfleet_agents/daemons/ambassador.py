# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ambassador: a local port that reaches one service wherever it runs.

The consumer connects to ``--listen`` (default address 127.0.0.1) on its own machine; the
ambassador forwards each connection to an instance registered under ``<prefix>/<service>/``
(values ``ip:port`` or ``{"host": ..., "port": ...}``, as the announcer and the registrator
write them), balancing between instances when there are several. The consumer never needs the
provider's address and keeps its port when the provider moves.

It is the discover watcher (daemons/discover.py) narrowed to one service, with an HAProxy of its
own: the same prefix watch (store/, on etcd: one read, then a watch, bursts debounced), the same
catalog (bad values skipped with one warning each), the same template, check and install
(haproxy/), and an HAProxy run as its child in master-worker mode (``MasterWorker``), reloaded
with SIGUSR2 without closing the listening port. So:

* a changed value (the provider moved) makes a new server, in place within ``--debounce``;
* a deleted or expired key leaves the service without servers: connections are closed at once
  (tcp) or answered 503 (http) until an instance is announced again;
* a malformed value is skipped with a warning and never reaches HAProxy;
* a failed watch (etcd down) is logged and re-established with backoff and a full read, while
  HAProxy keeps forwarding to the last good targets;
* HAProxy ending on its own stops the ambassador with exit code 1 (systemd restarts it).

Settings come from the command line (one ambassador = one unit, fleet or systemd); etcd from the
ETCDFLEET_* environment (``/etc/etcdfleet/etcd.env``, or ``--env-file``).

    python3 -m etcdfleet_agents.ambassador --service redis-A --listen 127.0.0.1:6379
    ... --check            render from etcd and check with haproxy -c, start nothing
    ... --check-settings   validate the arguments only
"""

import ipaddress
import os

from ansible_collections.etcdfleet.cluster.plugins.module_utils.service_keys import (
    DEFAULT_PREFIX, ServiceDataError, check_segment, check_service_name)

from etcdfleet_agents.daemons.discover import DEFAULTS, DockerDiscover, load_settings
from etcdfleet_agents.haproxy.apply import Updater
from etcdfleet_agents.haproxy.process import MasterWorker
from etcdfleet_agents.haproxy.render import Template
from etcdfleet_agents.runtime import SettingsError
from etcdfleet_agents.services.catalog import BALANCE_ALGORITHMS, DEFAULT_BALANCE, DEFAULT_MODE, MODES

DEFAULT_TEMPLATE = "/etc/etcdfleet/ambassador/haproxy.cfg.j2"
DEFAULT_RUN_DIR = "/run/etcdfleet/ambassador"
DEFAULT_LISTEN_ADDRESS = "127.0.0.1"


def parse_listen(text, default_address=DEFAULT_LISTEN_ADDRESS):
    """``port``, ``address:port``, ``[v6]:port`` or ``*:port`` -> ``(address, port)``.

    The address is an IP literal or ``*`` (every address). Raises ValueError naming the value.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("listen must be [address:]port, got %r" % (text,))
    text = text.strip()
    address, sep, port = text.rpartition(":")
    if not sep:
        address, port = default_address, text
    elif address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("listen %r: port must be a number in 1-65535" % text)
    if address != "*":
        try:
            address = ipaddress.ip_address(address).compressed
        except ValueError:
            raise ValueError("listen %r: %r is not an IP address (or *)" % (text, address)) from None
    return address, int(port)


def ambassador_settings(service, listen, prefix=DEFAULT_PREFIX, mode=DEFAULT_MODE, balance=DEFAULT_BALANCE,
                        instance=None, run_dir=DEFAULT_RUN_DIR, template=DEFAULT_TEMPLATE, haproxy=None,
                        **extra):
    """The discover settings of one ambassador (validate them with ``load_settings(data=...)``).

    ``haproxy`` overrides the HAProxy settings (binary, user, group, chroot, log, maxconn);
    ``extra`` other discover settings (debounce, max_delay, allow_hostnames, check, timeouts,
    retries). The configuration, runtime socket, server state and status live in
    ``<run_dir>/<instance>/``; ``instance`` defaults to ``<service>-<port>``.
    """
    address, port = parse_listen(listen)
    try:
        check_service_name(service)
        instance = check_segment("instance name", instance or "%s-%d" % (service, port))
    except ServiceDataError as exc:
        raise SettingsError(str(exc)) from None
    here = os.path.join(run_dir, instance)
    hap = {
        "config": os.path.join(here, "haproxy.cfg"),
        "reload_command": [],
        "runtime_socket": os.path.join(here, "admin.sock"),
        "server_state_file": os.path.join(here, "server-state"),
    }
    for field, value in (haproxy or {}).items():
        if field in hap:
            raise SettingsError("haproxy.%s is set by the ambassador itself" % field)
        hap[field] = value
    data = {
        "prefix": prefix,
        "services": [{"name": service, "port": port, "mode": mode, "balance": balance}],
        "bind_address": address,
        "template": template,
        "status_file": os.path.join(here, "status.json"),
        "stats": {"enabled": False},
        "haproxy": hap,
    }
    data.update(extra)
    return data


class Ambassador(DockerDiscover):
    """A local port that reaches one service registered in etcd, wherever it runs."""

    name = "ambassador"

    def __init__(self, args=None, environ=None, settings=None, store_factory=None):
        self.haproxy = None
        super(Ambassador, self).__init__(args=args, environ=environ, settings=settings,
                                         store_factory=store_factory)

    @classmethod
    def add_arguments(cls, parser):
        env = os.environ.get
        parser.add_argument("--service", required=True, help="service name (the directory under the prefix)")
        parser.add_argument("--listen", required=True,
                            help="[address:]port the consumer connects to (address default %s, * for all)"
                                 % DEFAULT_LISTEN_ADDRESS)
        parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="services prefix (default %(default)s)")
        parser.add_argument("--mode", choices=MODES, default=DEFAULT_MODE, help="tcp (default) or http")
        parser.add_argument("--balance", choices=BALANCE_ALGORITHMS, default=DEFAULT_BALANCE,
                            help="how connections are spread over several instances (default %(default)s)")
        parser.add_argument("--instance", help="name of this ambassador (default <service>-<port>)")
        parser.add_argument("--run-dir", default=DEFAULT_RUN_DIR,
                            help="HAProxy's files go to <run-dir>/<instance>/ (default %(default)s)")
        parser.add_argument("--template", default=env("ETCDFLEET_AMBASSADOR_TEMPLATE", DEFAULT_TEMPLATE),
                            help="HAProxy configuration template (default %(default)s)")
        parser.add_argument("--haproxy", default=DEFAULTS["haproxy"]["binary"], help="HAProxy binary")
        parser.add_argument("--haproxy-user", default=DEFAULTS["haproxy"]["user"],
                            help="user HAProxy runs as (empty: stay as started)")
        parser.add_argument("--haproxy-group", default=DEFAULTS["haproxy"]["group"], help="group HAProxy runs as")
        parser.add_argument("--haproxy-chroot", default=DEFAULTS["haproxy"]["chroot"],
                            help="directory HAProxy chroots to (empty: none)")
        parser.add_argument("--haproxy-log", default=DEFAULTS["haproxy"]["log"],
                            help="HAProxy's log target (empty: none)")
        parser.add_argument("--check-inter", default=DEFAULTS["check"]["inter"],
                            help="health check interval of every instance (HAProxy time)")
        parser.add_argument("--connect-timeout", default=DEFAULTS["timeouts"]["connect"],
                            help="HAProxy's connect timeout")
        parser.add_argument("--debounce", type=float, default=DEFAULTS["debounce"],
                            help="seconds without a change before a burst is applied")
        parser.add_argument("--max-delay", type=float, default=DEFAULTS["max_delay"],
                            help="longest wait from the first change of a burst")
        parser.add_argument("--allow-hostnames", action="store_true", help="accept host names in values")
        parser.add_argument("--env-file", help="read ETCDFLEET_* settings from this file too")
        parser.add_argument("--check", action="store_true",
                            help="render from etcd and check with haproxy -c, start nothing")
        parser.add_argument("--check-settings", action="store_true", help="validate the arguments only")

    def settings_from_args(self, args):
        timeouts = dict(DEFAULTS["timeouts"], connect=args.connect_timeout)
        data = ambassador_settings(
            args.service, args.listen, prefix=args.prefix, mode=args.mode, balance=args.balance,
            instance=args.instance, run_dir=args.run_dir, template=args.template,
            haproxy={"binary": args.haproxy, "user": args.haproxy_user, "group": args.haproxy_group,
                     "chroot": args.haproxy_chroot, "log": args.haproxy_log},
            debounce=args.debounce, max_delay=args.max_delay, allow_hostnames=args.allow_hostnames,
            check={"inter": args.check_inter}, timeouts=timeouts)
        return load_settings(data=data)

    def _setup(self, settings):
        self.settings = settings
        hap = settings["haproxy"]
        self.haproxy = MasterWorker(hap["config"], binary=hap["binary"], runtime_socket=hap["runtime_socket"],
                                    server_state_file=hap["server_state_file"], on_exit=self._haproxy_exited)
        self.updater = Updater(Template(settings["template"]), self.haproxy)
        # HAProxy is not running yet: the first apply starts it, even with the file unchanged.
        self.updater.reload_pending = True

    def _haproxy_exited(self, code):
        self.log.error("HAProxy (listening on %s) exited with code %s; stopping",
                       self.settings["services"][0]["port"], code)
        self.exit_code = 1
        self.stop()

    def update(self, values):
        os.makedirs(os.path.dirname(self.settings["haproxy"]["config"]), exist_ok=True)
        return super(Ambassador, self).update(values)

    def check(self):
        os.makedirs(os.path.dirname(self.settings["haproxy"]["config"]), exist_ok=True)
        return super(Ambassador, self).check()

    def cleanup(self):
        super(Ambassador, self).cleanup()
        if self.haproxy is not None and self.haproxy.running:
            self.haproxy.stop()
            self.log.info("stopped HAProxy")

    def main_loop(self, once=False):
        code = super(Ambassador, self).main_loop(once=once)
        return self.exit_code or code
