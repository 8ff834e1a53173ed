# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service manager's notification protocol (sd_notify(3)), for services of Type=notify.

A service tells systemd it is ready (``READY=1``), what it is doing (``STATUS=...``, shown by
``systemctl status``) and that it is still making progress (``WATCHDOG=1``, within
``WatchdogSec=``; systemd restarts a service that stops sending it). The protocol is one datagram
per message on the socket NOTIFY_SOCKET names; outside systemd, NOTIFY_SOCKET is unset and every
call here does nothing.

Written here rather than taken from python3-systemd: the protocol is a datagram of a few bytes,
and the library ships no wheel for the controller's virtual environments, where the daemons'
unit tests run.
"""

import os
import socket

# Longest STATUS= text sent; systemd shows one line of it
STATUS_LIMIT = 200


def notify_address(environ=None):
    """The address of the manager's notification socket, or None when there is none."""
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        return "\0" + address[1:]          # an abstract socket
    if address.startswith("/"):
        return address
    return None


def status_text(text):
    """``text`` as one STATUS= value: on one line (a newline would start another assignment) and
    at most STATUS_LIMIT characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= STATUS_LIMIT else text[:STATUS_LIMIT - 3] + "..."


def notify(*assignments, environ=None):
    """Send ``assignments`` (like ``"READY=1"``) to the service manager in one datagram.

    True when sent; False when there is no manager to tell or it could not be reached (the
    daemon goes on either way)."""
    address = notify_address(environ)
    if address is None or not assignments:
        return False
    message = "\n".join(assignments).encode("utf-8", "replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message)
    except OSError:
        return False
    return True


def watchdog_seconds(environ=None, pid=None):
    """The watchdog period systemd expects ``WATCHDOG=1`` within, in seconds; None when the
    service has no watchdog, or when the watchdog is meant for another process (WATCHDOG_PID)."""
    environ = os.environ if environ is None else environ
    owner = environ.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None


def without_notify(environ=None):
    """A copy of the environment for child processes: they must not speak for this service."""
    environ = os.environ if environ is None else environ
    return {key: value for key, value in environ.items()
            if key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
