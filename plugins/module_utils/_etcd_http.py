# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Small HTTP/1.1 transport on the standard library for the etcd client layer.

One ``HttpTransport`` talks to one endpoint over one kept-alive connection
(plus a separate connection per open stream). Failures are raised as
``EndpointUnavailable`` which tells whether the request may have reached the
server (``sent``) and whether TLS was the problem (``tls``), so that the
client can decide to try the next endpoint.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl

from ansible_collections.etcdfleet.cluster.plugins.module_utils._etcd_common import (
    EtcdConnectionError,
    EtcdTLSError,
    EtcdWatchTimeout,
    split_endpoint,
    summarize_text,
)

_HTTPS_REQUIRED = b'Client sent an HTTP request to an HTTPS server'
_STALE_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                 ConnectionAbortedError)


class EndpointUnavailable(EtcdConnectionError):
    """One endpoint failed. ``sent`` is true when the request may have been processed."""

    def __init__(self, endpoint, reason, tls=False, sent=False):
        super(EndpointUnavailable, self).__init__('%s: %s' % (endpoint, reason),
                                                  failures=[(endpoint, reason)])
        self.endpoint = endpoint
        self.reason = reason
        self.tls = tls
        self.sent = sent


def make_ssl_context(ca_cert=None, client_cert=None, client_key=None):
    """Build the client TLS context; configuration problems raise EtcdTLSError."""
    try:
        if ca_cert:
            context = ssl.create_default_context(cafile=ca_cert)
        else:
            context = ssl.create_default_context()
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise EtcdTLSError('cannot load ca_cert %s: %s' % (ca_cert, _error_text(exc)))
    if client_cert:
        try:
            context.load_cert_chain(client_cert, client_key or None)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise EtcdTLSError('cannot load client certificate %s%s: %s' % (
                client_cert, ' with key %s' % client_key if client_key else '', _error_text(exc)))
    return context


def _error_text(exc):
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, 'verify_message', None) or getattr(exc, 'reason', None)
        text = str(exc)
        if reason and reason.lower().replace('_', ' ') not in text.lower().replace('_', ' '):
            return '%s (%s)' % (text, reason)
        return text
    if isinstance(exc, socket.gaierror):
        return 'cannot resolve host name: %s' % (exc.strerror or exc)
    if isinstance(exc, ConnectionRefusedError):
        return 'connection refused'
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return 'timed out'
    text = getattr(exc, 'strerror', None) or str(exc)
    return text or type(exc).__name__


def speaks_plain_http(host, port, timeout):
    """Whether ``host:port`` answers a plain HTTP request (used to explain TLS handshake failures)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b'GET /version HTTP/1.0\r\nHost: etcd\r\n\r\n')
            return sock.recv(5) == b'HTTP/'
    except OSError:
        return False


def no_tls_reason(text):
    """The reason given when an https:// endpoint turns out to speak plain HTTP."""
    return 'TLS handshake failed, the endpoint does not seem to speak TLS (use http://): %s' % text


def describe_tls_error(exc, has_client_cert, address=None, after_handshake=False):
    """Explain an ``ssl.SSLError`` in terms of the connection options.

    ``address`` (host, port) allows a plain HTTP probe when the server closed
    the handshake without a word. ``after_handshake`` tells that the client
    side of the handshake had completed: with TLS 1.3 a server refusing the
    client certificate then simply closes the connection.
    """
    text = _error_text(exc)
    upper = text.upper()
    cert_refused = False
    no_tls = no_tls_reason(text)
    if 'WRONG_VERSION_NUMBER' in upper or 'WRONG VERSION NUMBER' in upper or 'RECORD_LAYER_FAILURE' in upper:
        return no_tls
    closed = 'UNEXPECTED_EOF' in upper or 'EOF OCCURRED' in upper or isinstance(exc, ConnectionError)
    if closed and address is not None and speaks_plain_http(address[0], address[1], 2.0):
        return no_tls
    if isinstance(exc, ssl.SSLCertVerificationError) or 'CERTIFICATE_VERIFY_FAILED' in upper:
        return 'server certificate not trusted (check ca_cert and the endpoint host name): %s' % text
    if 'CERTIFICATE_REQUIRED' in upper or 'HANDSHAKE_FAILURE' in upper or 'BAD_CERTIFICATE' in upper \
            or 'UNKNOWN_CA' in upper or 'CERTIFICATE_UNKNOWN' in upper:
        cert_refused = True
    elif after_handshake and ('EOF' in upper or isinstance(exc, ssl.SSLEOFError)):
        cert_refused = True
    if cert_refused:
        if has_client_cert:
            return 'the server refused the client certificate (check client_cert/client_key): %s' % text
        return 'the server requires a client certificate (set client_cert and client_key): %s' % text
    return 'TLS error: %s' % text


def speaks_tls(host, port, timeout):
    """Whether ``host:port`` completes a TLS handshake (used to explain failures of http:// endpoints)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=host):
                return True
    except (OSError, ssl.SSLError, ValueError):
        return False


HTTPS_HINT = 'the endpoint speaks https, not http (use https:// in endpoints)'


def _close_quietly(conn):
    if conn is not None:
        try:
            conn.close()
        except Exception:  # pylint: disable=broad-except
            pass


class HttpStream(object):
    """A response read line by line (the v3 watch stream)."""

    def __init__(self, transport, conn, response):
        self._transport = transport
        self._conn = conn
        self._response = response

    def readline(self, timeout=None):
        """Return the next line; raise EtcdWatchTimeout when ``timeout`` passes first."""
        if self._conn is None:
            raise EndpointUnavailable(self._transport.endpoint, 'stream already closed', sent=True)
        try:
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
            line = self._response.readline()
        except (socket.timeout, TimeoutError):
            self.close()
            raise EtcdWatchTimeout('no change within %s seconds' % timeout, timeout=timeout)
        except ssl.SSLError as exc:
            self.close()
            raise EndpointUnavailable(self._transport.endpoint,
                                      describe_tls_error(exc, self._transport.has_client_cert,
                                                         after_handshake=True),
                                      tls=True, sent=True)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise EndpointUnavailable(self._transport.endpoint,
                                      'stream broken: %s' % _error_text(exc), sent=True)
        if not line:
            self.close()
            raise EndpointUnavailable(self._transport.endpoint, 'stream closed by the server', sent=True)
        return line

    def close(self):
        conn, self._conn = self._conn, None
        _close_quietly(conn)

    @property
    def closed(self):
        return self._conn is None


# A member answers a connection attempt within milliseconds; one whose machine died does not
# answer at all (no refusal either), so connecting waits at most this long, whatever the request's
# own timeout: the next member is tried instead of waiting out the whole request timeout.
CONNECT_TIMEOUT = 1.0


def connect_timeout(timeout):
    """Seconds a new connection (TCP and TLS handshake) may take for a request of ``timeout``."""
    return CONNECT_TIMEOUT if not timeout else min(timeout, CONNECT_TIMEOUT)


# A request sent on a kept-alive connection to a member whose machine died is never acknowledged;
# the kernel drops the connection after this many seconds (TCP_USER_TIMEOUT, Linux) and the request
# fails over, instead of waiting out its whole timeout. A live member's machine acknowledges at
# once, however long etcd then takes to answer (a watch may wait for minutes).
UNACKED_TIMEOUT = 2.0


def socket_options():
    """``(level, option, value)`` set on every connection to etcd."""
    options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    if hasattr(socket, 'TCP_USER_TIMEOUT'):
        options.append((socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(UNACKED_TIMEOUT * 1000)))
    return options


class HttpTransport(object):
    """Requests to one etcd endpoint (``scheme://host:port``)."""

    def __init__(self, endpoint, timeout, ssl_context=None, username=None, password=None,
                 has_client_cert=False):
        self.endpoint = endpoint
        self.timeout = timeout
        self.scheme, self.host, self.port = split_endpoint(endpoint)
        self.ssl_context = ssl_context if self.scheme == 'https' else None
        if self.scheme == 'https' and self.ssl_context is None:
            self.ssl_context = make_ssl_context()
        self.has_client_cert = has_client_cert
        self._basic = None
        if username is not None and password is not None:
            raw = ('%s:%s' % (username, password)).encode('utf-8')
            self._basic = 'Basic ' + base64.b64encode(raw).decode('ascii')
        self._conn = None
        self.last_headers = {}

    # -- connections -------------------------------------------------------

    def _new_connection(self, timeout):
        timeout = connect_timeout(timeout)
        if self.scheme == 'https':
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.connect()
            for option in socket_options():
                conn.sock.setsockopt(*option)
        except ssl.SSLError as exc:
            conn.close()
            raise EndpointUnavailable(self.endpoint, describe_tls_error(exc, self.has_client_cert,
                                                                        (self.host, self.port)),
                                      tls=True)
        except (ConnectionResetError, ConnectionAbortedError) as exc:
            # a plain HTTP server may answer a TLS hello with a reset instead of bytes
            conn.close()
            if self.scheme == 'https':
                raise EndpointUnavailable(self.endpoint, describe_tls_error(exc, self.has_client_cert,
                                                                            (self.host, self.port)),
                                          tls=True)
            raise EndpointUnavailable(self.endpoint, _error_text(exc))
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise EndpointUnavailable(self.endpoint, _error_text(exc))
        return conn

    def close(self):
        conn, self._conn = self._conn, None
        _close_quietly(conn)

    # -- member endpoints, the same for both API versions --------------------

    def member_health(self, headers=None):
        """(healthy, reason) from the member's /health endpoint."""
        status, data = self.request_json('GET', '/health', headers=headers)
        if status == 200 and isinstance(data, dict):
            healthy = str(data.get('health')).lower() == 'true'
            return healthy, None if healthy else (data.get('reason') or 'member reports unhealthy')
        return False, 'health check answered HTTP %s' % status

    def member_version(self):
        """(server version, cluster version) from the member's /version endpoint."""
        status, data = self.request_json('GET', '/version')
        if status == 200 and isinstance(data, dict):
            return data.get('etcdserver'), data.get('etcdcluster')
        return None, None

    def _headers(self, headers, body):
        result = {'Accept': 'application/json'}
        if body is not None:
            result['Content-Type'] = 'application/json'
        if self._basic:
            result['Authorization'] = self._basic
        result.update(headers or {})
        return result

    def _check_scheme_mismatch(self, status, data):
        if status == 400 and _HTTPS_REQUIRED in (data or b''):
            self.close()
            raise EndpointUnavailable(self.endpoint, HTTPS_HINT, tls=True)

    def _failure(self, exc, sent, timeout, fresh=False):
        """Classify ``exc``; ``fresh`` tells the connection was new (no request answered on it yet)."""
        self.close()
        if isinstance(exc, ssl.SSLError):
            return EndpointUnavailable(self.endpoint,
                                       describe_tls_error(exc, self.has_client_cert, after_handshake=True),
                                       tls=True, sent=False)
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return EndpointUnavailable(self.endpoint, 'no answer within %s seconds' % timeout, sent=sent)
        reason = _error_text(exc)
        if isinstance(exc, _STALE_ERRORS):
            if self.scheme == 'http' and speaks_tls(self.host, self.port, min(timeout or 2.0, 2.0)):
                return EndpointUnavailable(self.endpoint, HTTPS_HINT, tls=True, sent=False)
            if self.scheme == 'https' and fresh:
                # a TLS 1.3 server refusing the client certificate closes the connection
                # right after the handshake, before reading the request
                return EndpointUnavailable(self.endpoint, describe_tls_error(
                    ssl.SSLEOFError('connection closed after the TLS handshake: %s' % reason),
                    self.has_client_cert, after_handshake=True), tls=True, sent=False)
            reason = 'connection closed by the server (%s)' % reason
        return EndpointUnavailable(self.endpoint, reason, sent=sent)

    # -- requests -------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=None):
        """Send one request; return ``(status, body_bytes)``."""
        timeout = self.timeout if timeout is None else timeout
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode('utf-8')
        all_headers = self._headers(headers, payload)
        for attempt in (0, 1):
            reused = self._conn is not None
            if not reused:
                self._conn = self._new_connection(timeout)
            conn = self._conn
            try:
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                conn.request(method, path, body=payload, headers=all_headers)
                response = conn.getresponse()
                data = response.read()
            except _STALE_ERRORS as exc:
                if reused and attempt == 0:
                    # a kept-alive connection the server had closed: the request
                    # was not processed, open a new connection and send it again
                    self.close()
                    continue
                raise self._failure(exc, sent=True, timeout=timeout, fresh=not reused)
            except (OSError, http.client.HTTPException) as exc:
                raise self._failure(exc, sent=True, timeout=timeout)
            self.last_headers = dict((name.lower(), value) for name, value in response.getheaders())
            if response.will_close:
                self.close()
            self._check_scheme_mismatch(response.status, data)
            return response.status, data
        raise EndpointUnavailable(self.endpoint, 'connection lost', sent=True)  # pragma: no cover

    def request_json(self, method, path, body=None, headers=None, timeout=None):
        """Like ``request`` but decode a JSON answer (``None`` for an empty body)."""
        status, data = self.request(method, path, body=body, headers=headers, timeout=timeout)
        if status >= 400:
            try:
                return status, decode_json(data, self.endpoint, path)
            except EndpointUnavailable:
                # not a JSON error from etcd: keep the text for the message
                return status, {'http_error': summarize_text(data[:2000].decode('utf-8', 'replace'))}
        return status, decode_json(data, self.endpoint, path)

    def open_stream(self, method, path, body=None, headers=None, timeout=None):
        """Send a request on a new connection and return ``(status, HttpStream or body)``."""
        timeout = self.timeout if timeout is None else timeout
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode('utf-8')
        conn = self._new_connection(timeout)
        try:
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            conn.request(method, path, body=payload, headers=self._headers(headers, payload))
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self._failure(exc, sent=True, timeout=timeout, fresh=True)
        if response.status != 200:
            try:
                data = response.read()
            except (OSError, http.client.HTTPException):
                data = b''
            conn.close()
            self._check_scheme_mismatch(response.status, data)
            return response.status, data
        return response.status, HttpStream(self, conn, response)


def decode_json(data, endpoint='', path=''):
    if not data:
        return None
    try:
        return json.loads(data.decode('utf-8'))
    except (ValueError, UnicodeError):
        snippet = data[:200].decode('utf-8', 'replace').strip()
        raise EndpointUnavailable(endpoint, 'answer to %s is not JSON: %r' % (path, snippet), sent=True)
