# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""TLS with client certificates, and authentication, against real etcd servers."""

from __future__ import annotations

import uuid

import pytest

from etcd_server import EtcdServer, enable_v2_auth, enable_v3_auth
from integration_helpers import no_traceback

KEY = 'etcdfleet.cluster.etcd_key'
INFO = 'etcdfleet.cluster.etcd_key_info'
API_VERSIONS = ('v2', 'v3')


def test_tls_client_certificates(runner, tls_server, tls_material, etcd_server):
    tls = tls_material
    port = tls_server.client_port
    good = {'endpoints': [tls_server.url], 'ca_cert': tls.ca_cert, 'client_cert': tls.client_cert,
            'client_key': tls.client_key}
    key = '/it/tls-%s' % uuid.uuid4().hex[:6]
    tasks = []
    for api in API_VERSIONS:
        tasks += [
            {'name': 'set_' + api, KEY: dict(good, api_version=api, key=key, value=api)},
            {'name': 'read_' + api, INFO: dict(good, api_version=api, key=key)},
            {'name': 'no_scheme_' + api, INFO: dict(good, api_version=api, key=key,
                                                    endpoints=['127.0.0.1:%d' % port])},
            {'name': 'cluster_' + api, 'etcdfleet.cluster.etcd_cluster_info': dict(good, api_version=api)},
            {'name': 'lookup_' + api, 'ansible.builtin.set_fact': {
                'x': "{{ lookup('etcdfleet.cluster.etcd', '%s', endpoints=['%s'], api_version='%s', ca_cert='%s', "
                     "client_cert='%s', client_key='%s') }}" % (key, tls_server.url, api, tls.ca_cert,
                                                                tls.client_cert, tls.client_key)}},
            {'name': 'no_client_cert_' + api, 'ignore_errors': True,
             INFO: {'endpoints': [tls_server.url], 'ca_cert': tls.ca_cert, 'api_version': api, 'key': key}},
            {'name': 'untrusted_client_' + api, 'ignore_errors': True,
             INFO: {'endpoints': [tls_server.url], 'ca_cert': tls.ca_cert, 'api_version': api, 'key': key,
                    'client_cert': tls.other_client_cert, 'client_key': tls.other_client_key}},
            {'name': 'wrong_ca_' + api, 'ignore_errors': True,
             INFO: dict(good, api_version=api, key=key, ca_cert=tls.other_ca_cert)},
            {'name': 'http_to_https_' + api, 'ignore_errors': True,
             INFO: dict(good, api_version=api, key=key, endpoints=['http://127.0.0.1:%d' % port])},
            # TLS options with a plain-http endpoint of a plain server: refused, not ignored
            {'name': 'tls_options_on_http_' + api, 'ignore_errors': True,
             KEY: dict(good, api_version=api, key=key, value='plain',
                       endpoints=['http://127.0.0.1:%d' % etcd_server.client_port])},
            {'name': 'https_to_http_' + api, 'ignore_errors': True,
             INFO: dict(good, api_version=api, key=key,
                        endpoints=['https://127.0.0.1:%d' % etcd_server.client_port])},
            {'name': 'key_mismatch_' + api, 'ignore_errors': True,
             INFO: dict(good, api_version=api, key=key, client_key=tls.other_client_key)},
        ]
    res = runner.run(tasks)
    for api in API_VERSIONS:
        assert res['set_' + api]['changed'] is True
        assert res['read_' + api]['value'] == api
        assert res['no_scheme_' + api]['value'] == api, 'a URL without scheme uses https when TLS is set'
        cluster = res['cluster_' + api]
        assert cluster['healthy'] is True and cluster['members'][0]['healthy'] is True
        assert res['lookup_' + api]['ansible_facts']['x'] == api
        fail = res['no_client_cert_' + api]
        assert fail['failed'] is True and 'client certificate' in fail['msg'], fail['msg']
        assert tls_server.url in fail['msg']
        fail = res['untrusted_client_' + api]
        assert fail['failed'] is True and 'refused the client certificate' in fail['msg'], fail['msg']
        fail = res['wrong_ca_' + api]
        assert fail['failed'] is True and 'not trusted' in fail['msg'] and 'ca_cert' in fail['msg'], fail['msg']
        for name in ('http_to_https_', 'tls_options_on_http_'):
            fail = res[name + api]
            assert fail['failed'] is True and 'is plain http' in fail['msg'] and 'https://' in fail['msg'], fail['msg']
            assert fail['error_type'] == 'EtcdUsageError', fail['msg']
            no_traceback(fail)
        fail = res['https_to_http_' + api]
        assert fail['failed'] is True and 'does not seem to speak TLS' in fail['msg'], fail['msg']
        fail = res['key_mismatch_' + api]
        assert fail['failed'] is True and 'cannot load client certificate' in fail['msg'], fail['msg']
        for name in ('no_client_cert_', 'untrusted_client_', 'wrong_ca_', 'https_to_http_', 'key_mismatch_'):
            assert res[name + api]['error_type'] == 'EtcdTLSError', (name, res[name + api]['msg'])
            no_traceback(res[name + api])


@pytest.fixture(scope='module')
def auth_server(tmp_path_factory):
    server = EtcdServer(name='it-auth', workdir=str(tmp_path_factory.mktemp('etcd-auth')))
    server.start()
    enable_v3_auth(server, 'r00t-pass')
    enable_v2_auth(server, 'r00t-pass')
    yield server
    server.stop()


def test_authentication(runner, auth_server):
    key = '/it/auth-%s' % uuid.uuid4().hex[:6]
    tasks = []
    for api in API_VERSIONS:
        base = {'endpoints': [auth_server.url], 'api_version': api, 'key': key}
        tasks += [
            {'name': 'set_' + api, KEY: dict(base, value=api, username='root', password='r00t-pass')},
            {'name': 'read_' + api, INFO: dict(base, username='root', password='r00t-pass')},
            {'name': 'wrong_password_' + api, 'ignore_errors': True,
             INFO: dict(base, username='root', password='wrong')},
            {'name': 'anonymous_' + api, 'ignore_errors': True, KEY: dict(base, value='anon')},
        ]
    res = runner.run(tasks)
    for api in API_VERSIONS:
        assert res['set_' + api]['changed'] is True
        assert res['read_' + api]['value'] == api
        fail = res['wrong_password_' + api]
        assert fail['failed'] is True and fail['error_type'] == 'EtcdAuthError', fail['msg']
        assert 'root' in fail['msg']
        assert 'wrong' not in repr(fail).replace('wrong user name', ''), 'the password must not leak'
        fail = res['anonymous_' + api]
        assert fail['failed'] is True and fail['error_type'] == 'EtcdAuthError', fail['msg']
        assert 'username' in fail['msg']
        for name in ('wrong_password_', 'anonymous_'):
            no_traceback(res[name + api])
