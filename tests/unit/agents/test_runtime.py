# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every daemon shares: log lines carry their journal priority when systemd's journal reads them."""

import logging
import os

import pytest

from etcdfleet_agents import runtime


@pytest.fixture
def journal_file(tmp_path):
    path = tmp_path / "journal-stream"
    with open(path, "w+", encoding="utf-8") as stream:
        status = os.fstat(stream.fileno())
        yield stream, {"JOURNAL_STREAM": "%d:%d" % (status.st_dev, status.st_ino)}
    logging.getLogger().handlers[:] = []


def logged(stream):
    stream.flush()
    stream.seek(0)
    return stream.read().splitlines()


def test_lines_to_the_journal_carry_their_priority(journal_file):
    stream, environ = journal_file
    log = runtime.setup_logging("registrator", "DEBUG", stream=stream, environ=environ)
    log.debug("d")
    log.info("registered web")
    log.warning("skipped a key")
    log.error("etcd unreachable")
    assert logged(stream) == ["<7>DEBUG d", "<6>INFO registered web", "<4>WARNING skipped a key",
                              "<3>ERROR etcd unreachable"]


@pytest.mark.parametrize("environ", [{}, {"JOURNAL_STREAM": "1:2"}, {"JOURNAL_STREAM": "garbage"}])
def test_other_streams_get_plain_lines(journal_file, environ):
    stream = journal_file[0]
    log = runtime.setup_logging("registrator", "INFO", stream=stream, environ=environ)
    log.warning("skipped a key")
    assert logged(stream) == ["WARNING skipped a key"]


def test_the_etcd_library_does_not_log_each_failed_request(journal_file):
    """python-etcd logs every failed request at ERROR; the client layer reports the failure once,
    as the daemon's own line."""
    stream = journal_file[0]
    log = runtime.setup_logging("fleet", "INFO", stream=stream, environ={})
    logging.getLogger("etcd.client").error("Request to server http://10.0.0.1:2379 failed")
    log.warning("cannot renew the registration")
    assert logged(stream) == ["WARNING cannot renew the registration"]
