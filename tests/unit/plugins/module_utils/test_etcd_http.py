# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""How the clients explain an https:// endpoint that speaks plain HTTP (real loopback sockets)."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient, EtcdConnectionError


class PlainHttpServer(object):
    """Answers HTTP requests; resets the connection (RST) when it receives a TLS hello instead."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.resets = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(4096)
                if data[:1] == b'\x16':
                    # TLS handshake record: drop it with a reset, like a busy server closing
                    # a connection with unread data
                    self.resets += 1
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                    continue
                conn.sendall(b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n'
                             b'{"etcdserver":"3.4.0","etcdcluster":"3.4.0"}')

    def close(self):
        self.sock.close()


@pytest.fixture()
def plain_server():
    server = PlainHttpServer()
    yield server
    server.close()


@pytest.mark.parametrize('api_version', ['v2', 'v3'])
def test_reset_tls_hello_is_explained(plain_server, api_version):
    if api_version == 'v2':
        pytest.importorskip('etcd')
    endpoint = 'https://127.0.0.1:%d' % plain_server.port
    client = EtcdClient([endpoint], api_version=api_version, timeout=3)
    with pytest.raises(EtcdConnectionError) as info:
        client.get('/x')
    assert plain_server.resets >= 1, 'the server never saw a TLS hello'
    message = str(info.value)
    assert 'does not seem to speak TLS' in message, message
    assert endpoint in message
