# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Start throw-away etcd servers on loopback for tests and benchmarks.

Used by tests/integration (pytest fixtures) and bench/ scripts. Needs the
``etcd`` binary (Debian package ``etcd-server``; ``ETCD_BINARY`` overrides).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

DEFAULT_BINARY = '/usr/bin/etcd'


def etcd_binary():
    """Path of the etcd binary, or None when it is not installed."""
    candidate = os.environ.get('ETCD_BINARY') or DEFAULT_BINARY
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which('etcd')


def _worker_ports():
    """The ports this test process may hand out: a block of its own per pytest-xdist worker, below
    the kernel's ephemeral range, so that two processes never pick the same port and no outgoing
    connection is given one of them meanwhile."""
    worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    first = PORT_BASE + (index % PORT_BLOCKS) * PORT_BLOCK
    return iter(range(first, first + PORT_BLOCK))


PORT_BASE, PORT_BLOCK, PORT_BLOCKS = 20000, 1500, 8
_PORTS = _worker_ports()


def free_port(host='127.0.0.1'):
    """A TCP port free on ``host`` now, from this process's block, never one handed out before
    (a test often takes several before binding any)."""
    for port in _PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError('no free port left in this test process\'s block')


class EtcdServer(object):
    """One single-member etcd on ``host`` (default 127.0.0.1) with the v2 API enabled.

    ``tls`` is a TlsMaterial (serve https with its server certificate);
    ``client_cert_auth`` makes the server require a client certificate.
    ``discovery`` bootstraps through a discovery URL instead of a static
    ``--initial-cluster``.
    """

    def __init__(self, name='etcd-test', tls=None, client_cert_auth=False, discovery=None,
                 binary=None, workdir=None, host='127.0.0.1'):
        self.name = name
        self.host = host
        self.tls = tls
        self.client_cert_auth = client_cert_auth
        self.discovery = discovery
        self.binary = binary or etcd_binary()
        self.workdir = workdir
        self.process = None
        self.client_port = None
        self.peer_port = None
        self._own_workdir = False
        self.log_path = None
        self.data_dir = None

    @property
    def scheme(self):
        return 'https' if self.tls else 'http'

    @property
    def url(self):
        return '%s://%s:%d' % (self.scheme, self.host, self.client_port)

    @property
    def peer_url(self):
        return 'http://%s:%d' % (self.host, self.peer_port)

    def _command(self, data_dir):
        cmd = [
            self.binary,
            '--name', self.name,
            '--data-dir', data_dir,
            '--listen-client-urls', self.url,
            '--advertise-client-urls', self.url,
            '--listen-peer-urls', self.peer_url,
            '--initial-advertise-peer-urls', self.peer_url,
            '--enable-v2=true',
            '--heartbeat-interval', '50',
            '--election-timeout', '500',
            '--logger', 'zap',
            '--log-level', 'warn',
        ]
        if self.discovery:
            cmd += ['--discovery', self.discovery]
        else:
            cmd += ['--initial-cluster', '%s=%s' % (self.name, self.peer_url),
                    '--initial-cluster-state', 'new']
        if self.tls:
            cmd += ['--cert-file', self.tls.server_cert, '--key-file', self.tls.server_key]
            if self.client_cert_auth:
                cmd += ['--client-cert-auth', '--trusted-ca-file', self.tls.ca_cert]
        return cmd

    def start(self, timeout=30):
        if self.binary is None:
            raise RuntimeError('etcd binary not found (install etcd-server or set ETCD_BINARY)')
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix='etcd-test-')
            self._own_workdir = True
        os.makedirs(self.workdir, exist_ok=True)
        last_error = None
        for attempt in range(3):
            self.client_port = free_port()
            self.peer_port = free_port()
            data_dir = os.path.join(self.workdir, 'data-%d' % attempt)
            self.data_dir = data_dir
            self.log_path = os.path.join(self.workdir, 'etcd-%d.log' % attempt)
            with open(self.log_path, 'wb') as log:
                self.process = subprocess.Popen(self._command(data_dir), stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL)
            try:
                self.wait_ready(timeout)
                return self
            except RuntimeError as exc:
                last_error = exc
                self._kill()
        raise last_error

    def ssl_context(self):
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.tls.ca_cert)
        context.load_cert_chain(self.tls.client_cert, self.tls.client_key)
        return context

    def request(self, method, path, body=None, timeout=5, headers=None):
        """Plain HTTP request to this server (JSON in and out)."""
        data = None
        all_headers = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode('utf-8') if not isinstance(body, bytes) else body
            all_headers.setdefault('Content-Type', 'application/json')
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context()) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw.decode('utf-8')) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw.decode('utf-8'))
            except ValueError:
                return exc.code, raw.decode('utf-8', 'replace')

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('etcd exited with %s: %s' % (self.process.returncode, self.log_tail()))
            try:
                status, data = self.request('GET', '/health', timeout=1)
                if status == 200 and isinstance(data, dict) and str(data.get('health')) == 'true':
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError('etcd did not become healthy within %ss: %s' % (timeout, self.log_tail()))

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, 'r', errors='replace') as handle:
                return ''.join(handle.readlines()[-lines:])
        except OSError:
            return ''

    def _kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def halt(self):
        """Stop the etcd process but keep its ports and data (a member going down)."""
        self._kill()

    def resume(self, timeout=30):
        """Start the process again on the same ports and data after halt()."""
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(self._command(self.data_dir), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        self.wait_ready(timeout)
        return self

    def stop(self):
        self._kill()
        self.process = None
        if self._own_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- helpers for tests -------------------------------------------------

    def v3(self, path, body):
        """POST to the v3 JSON gateway; return the decoded answer (raises on HTTP errors)."""
        status, data = self.request('POST', '/v3' + path, body)
        if status != 200:
            raise RuntimeError('v3 %s -> %s %s' % (path, status, data))
        return data

    def compact(self):
        """Compact v3 history up to the current revision; return that revision."""
        revision = int(self.v3('/kv/range', {'key': 'AA=='})['header']['revision'])
        self.v3('/kv/compaction', {'revision': str(revision), 'physical': True})
        return revision


class TlsMaterial(object):
    """A CA with a server certificate for 127.0.0.1 and a client certificate,
    plus an unrelated CA and client certificate that the server does not trust."""

    def __init__(self, directory):
        self.directory = directory
        self.ca_cert = os.path.join(directory, 'ca.pem')
        self.server_cert = os.path.join(directory, 'server.pem')
        self.server_key = os.path.join(directory, 'server-key.pem')
        self.client_cert = os.path.join(directory, 'client.pem')
        self.client_key = os.path.join(directory, 'client-key.pem')
        self.other_ca_cert = os.path.join(directory, 'other-ca.pem')
        self.other_client_cert = os.path.join(directory, 'other-client.pem')
        self.other_client_key = os.path.join(directory, 'other-client-key.pem')

    # client certificates whose common name is an etcd user name (the v2 API maps it to the user)
    IDENTITIES = ('root', 'registrator')

    def identity(self, name):
        """(certificate, key) of the client certificate whose common name is ``name``."""
        return (os.path.join(self.directory, 'client-%s.pem' % name),
                os.path.join(self.directory, 'client-%s-key.pem' % name))

    @classmethod
    def create(cls, directory):
        # imported here: only the TLS tests need the cryptography package
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
        import ipaddress

        material = cls(directory)
        now = datetime.datetime.now(datetime.timezone.utc)

        def write_key(path, key):
            with open(path, 'wb') as handle:
                handle.write(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption()))
            os.chmod(path, 0o600)

        def write_cert(path, cert):
            with open(path, 'wb') as handle:
                handle.write(cert.public_bytes(serialization.Encoding.PEM))

        def make_ca(common_name):
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(days=1))
                    .not_valid_after(now + datetime.timedelta(days=30))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                 content_commitment=False, key_encipherment=False,
                                                 data_encipherment=False, key_agreement=False,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                    .sign(key, hashes.SHA256()))
            return key, cert

        def issue(ca_key, ca_cert, common_name, server):
            key = ec.generate_private_key(ec.SECP256R1())
            builder = (x509.CertificateBuilder()
                       .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                       .issuer_name(ca_cert.subject).public_key(key.public_key())
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(days=1))
                       .not_valid_after(now + datetime.timedelta(days=30))
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                       .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                      critical=False))
            if server:
                builder = builder.add_extension(x509.SubjectAlternativeName([
                    x509.IPAddress(ipaddress.ip_address('127.0.0.1')), x509.DNSName('localhost')]),
                    critical=False)
                usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            else:
                usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            return key, builder.sign(ca_key, hashes.SHA256())

        os.makedirs(directory, exist_ok=True)
        ca_key, ca_cert = make_ca('etcdfleet test CA')
        write_cert(material.ca_cert, ca_cert)
        key, cert = issue(ca_key, ca_cert, 'etcd server', server=True)
        write_cert(material.server_cert, cert)
        write_key(material.server_key, key)
        key, cert = issue(ca_key, ca_cert, 'etcd client', server=False)
        write_cert(material.client_cert, cert)
        write_key(material.client_key, key)
        for name in cls.IDENTITIES:
            key, cert = issue(ca_key, ca_cert, name, server=False)
            cert_path, key_path = material.identity(name)
            write_cert(cert_path, cert)
            write_key(key_path, key)
        other_key, other_cert = make_ca('unrelated CA')
        write_cert(material.other_ca_cert, other_cert)
        key, cert = issue(other_key, other_cert, 'stranger', server=False)
        write_cert(material.other_client_cert, cert)
        write_key(material.other_client_key, key)
        return material


def enable_v3_auth(server, root_password):
    """Create user root with ``root_password`` and turn v3 authentication on."""
    server.v3('/auth/role/add', {'name': 'root'})
    server.v3('/auth/user/add', {'name': 'root', 'password': root_password})
    server.v3('/auth/user/grant', {'user': 'root', 'role': 'root'})
    server.v3('/auth/enable', {})


def enable_v2_auth(server, root_password):
    """Create user root with ``root_password`` and turn v2 authentication on."""
    status, data = server.request('PUT', '/v2/auth/users/root', {'user': 'root', 'password': root_password})
    if status not in (200, 201):
        raise RuntimeError('v2 user add failed: %s %s' % (status, data))
    status, data = server.request('PUT', '/v2/auth/enable')
    if status not in (200, 201):
        raise RuntimeError('v2 auth enable failed: %s %s' % (status, data))
    # anonymous requests get the guest role, which may do everything unless revoked
    headers = {'Authorization': 'Basic ' + base64.b64encode(('root:%s' % root_password).encode()).decode()}
    status, data = server.request('PUT', '/v2/auth/roles/guest',
                                  {'role': 'guest', 'revoke': {'kv': {'read': ['/*'], 'write': ['/*']}}},
                                  headers=headers)
    if status != 200:
        raise RuntimeError('v2 guest revoke failed: %s %s' % (status, data))


class EtcdClusterMember(EtcdServer):
    """One member of an :class:`EtcdCluster` (its ports are chosen before any member starts)."""

    def __init__(self, name, workdir, initial_cluster, binary=None):
        super(EtcdClusterMember, self).__init__(name=name, binary=binary, workdir=workdir)
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data_dir = os.path.join(workdir, 'data')
        self.log_path = os.path.join(workdir, 'etcd.log')
        self.initial_cluster = initial_cluster

    def _command(self, data_dir):
        cmd = super(EtcdClusterMember, self)._command(data_dir)
        at = cmd.index('--initial-cluster')
        cmd[at + 1] = ','.join(self.initial_cluster)
        return cmd

    def launch(self):
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(self._command(self.data_dir), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)

    def pause(self):
        """SIGSTOP: the process keeps its ports but answers nothing (a hung member)."""
        self.process.send_signal(signal.SIGSTOP)

    def cont(self):
        self.process.send_signal(signal.SIGCONT)

    def resume(self, timeout=30):
        self.launch()
        self.wait_ready(timeout)
        return self


class EtcdCluster(object):
    """``size`` etcd members on 127.0.0.1 forming one cluster (v2 API enabled)."""

    def __init__(self, size=3, workdir=None, binary=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix='etcd-cluster-')
        self._own_workdir = workdir is None
        names = ['member%d' % i for i in range(size)]
        self.members = []
        peers = []
        for name in names:
            member = EtcdClusterMember(name, os.path.join(self.workdir, name), peers, binary=binary)
            os.makedirs(member.workdir, exist_ok=True)
            peers.append('%s=%s' % (name, member.peer_url))
            self.members.append(member)

    @property
    def urls(self):
        return [member.url for member in self.members]

    def start(self, timeout=30):
        if self.members[0].binary is None:
            raise RuntimeError('etcd binary not found (install etcd-server or set ETCD_BINARY)')
        return self.resume(timeout)

    def halt(self):
        """Stop every member (the whole etcd down); data and ports are kept."""
        for member in self.members:
            member.halt()

    def resume(self, timeout=30):
        """Start every member again after halt()."""
        for member in self.members:
            member.launch()
        for member in self.members:
            member.wait_ready(timeout)
        return self

    def stop(self):
        for member in self.members:
            if member.process is not None and member.process.poll() is None:
                member.cont()
            member.halt()
            member.process = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
