# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service manager's notifications: sent on a real datagram socket as systemd reads them, and
the daemons' use of them (ready once, status on change, the watchdog fed only while every loop
makes progress)."""

import os
import socket
import threading
import time

import pytest

from etcdfleet_agents import runtime
from etcdfleet_agents.systemd import notify as sd


@pytest.fixture
def manager(tmp_path, monkeypatch):
    """A socket standing for systemd's: NOTIFY_SOCKET names it; returns a function that reads
    the messages received so far."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    received = []

    def messages():
        while True:
            try:
                received.append(sock.recv(4096).decode())
            except BlockingIOError:
                return list(received)

    yield messages
    sock.close()


def test_one_datagram_per_notification(manager):
    assert sd.notify("READY=1", "STATUS=watching")
    assert manager() == ["READY=1\nSTATUS=watching"]


def test_abstract_socket(monkeypatch):
    name = "etcdfleet-test-%d" % os.getpid()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sd.notify("WATCHDOG=1")
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        sock.close()


@pytest.mark.parametrize("value", ["", "relative/path", None])
def test_nothing_to_tell_outside_systemd(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    else:
        monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert not sd.notify("READY=1")


def test_a_vanished_manager_is_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert not sd.notify("READY=1")


def test_status_stays_one_assignment():
    """A status built from etcd data cannot add a line of its own (READY=1, MAINPID=...)."""
    assert sd.status_text("watching\nMAINPID=1\r\nREADY=1") == "watching MAINPID=1 READY=1"
    assert len(sd.status_text("x" * 1000)) == sd.STATUS_LIMIT


@pytest.mark.parametrize("environ, expected", [
    ({"WATCHDOG_USEC": "60000000"}, 60.0),
    ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1234"}, 4.0),
    ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "99"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_period(environ, expected):
    assert sd.watchdog_seconds(environ, pid=1234) == expected


def test_children_do_not_inherit_the_socket():
    env = sd.without_notify({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1", "WATCHDOG_PID": "2", "PATH": "/bin"})
    assert env == {"PATH": "/bin"}


class Sleeper(runtime.Daemon):
    name = "sleeper"


def test_ready_once_and_status_on_change(manager):
    daemon = Sleeper()
    daemon.ready("in step")
    daemon.ready("in step")
    daemon.set_status("retrying: etcd away")
    daemon.set_status("retrying: etcd away")
    assert manager() == ["STATUS=in step", "READY=1", "STATUS=retrying: etcd away"]


def supervised(daemon):
    thread = threading.Thread(target=daemon.supervise, daemon=True)
    thread.start()
    return thread


def test_watchdog_fed_while_loops_beat_and_not_once_one_stalls(manager, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    daemon = Sleeper()
    assert daemon.tick == pytest.approx(0.1)
    thread = supervised(daemon)
    try:
        beats = 0
        while beats < 8:
            daemon.alive("main")
            daemon.alive("keeper")
            time.sleep(0.05)
            beats += 1
        fed = manager().count("WATCHDOG=1")
        assert fed >= 3
        daemon.alive("main")          # the keeper stops beating
        time.sleep(0.35)
        assert daemon.stalled_loops() == ["keeper", "main"]
        before = manager().count("WATCHDOG=1")
        time.sleep(0.3)
        assert manager().count("WATCHDOG=1") == before
        daemon.idle("keeper")         # the keeper's loop ended: no longer watched
        daemon.alive("main")
        time.sleep(0.15)
        assert manager().count("WATCHDOG=1") > before
    finally:
        daemon.stopping.set()
        thread.join(2)


def test_ready_anyway_after_the_timeout(manager, monkeypatch):
    monkeypatch.setattr(runtime, "READY_TIMEOUT", 0.2)
    daemon = Sleeper()
    daemon.set_status("retrying: etcd unreachable")
    thread = supervised(daemon)
    try:
        time.sleep(0.5)
    finally:
        daemon.stopping.set()
        thread.join(2)
    assert daemon.is_ready
    assert manager() == ["STATUS=retrying: etcd unreachable", "READY=1"]


def test_pause_beats_every_tick(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    daemon = Sleeper()
    beats = []
    monkeypatch.setattr(daemon, "alive", lambda loop="main": beats.append(loop))
    assert not daemon.pause(0.3, "keeper")
    assert len(beats) >= 5 and set(beats) == {"keeper"}
    event = threading.Event()
    event.set()
    assert daemon.pause(10, event=event)
