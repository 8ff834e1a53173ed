# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils import fleet_keys as K
from ansible_collections.etcdfleet.cluster.plugins.module_utils import fleet_registry as R

KAPPA_HASH = '559024d01378ac913e63c18dfd75f7a58d1f0bf8'
M1 = R.Machine('7aa2819a5e2a4c9cac1e3d4b87760f7f', '172.17.8.101')
M2 = R.Machine('bc1eb30f9eb844648110fec1455db88e', '172.17.8.103')
M3 = R.Machine('e1103feeae8744c9ab93dc662803ea66', '172.17.8.102')


# ------------------------------------------------------------ keys

def test_default_key_layout_matches_fleet():
    k = K.DEFAULT_KEYS
    assert k.root == '/_coreos.com/fleet'
    assert k.job_dir == '/_coreos.com/fleet/job'
    assert k.job_key('kappa-test@1.service') == '/_coreos.com/fleet/job/kappa-test@1.service'
    assert k.job_object_key('a.service') == '/_coreos.com/fleet/job/a.service/object'
    assert k.job_target_state_key('a.service') == '/_coreos.com/fleet/job/a.service/target-state'
    assert k.job_target_key('a.service') == '/_coreos.com/fleet/job/a.service/target'
    assert k.job_heartbeat_key('a.service') == '/_coreos.com/fleet/job/a.service/job-state'
    assert k.job_reason_key('a.service') == '/_coreos.com/fleet/job/a.service/reason'
    assert k.unit_dir == '/_coreos.com/fleet/unit'
    assert k.unit_key(KAPPA_HASH.upper()) == '/_coreos.com/fleet/unit/' + KAPPA_HASH
    assert k.machines_dir == '/_coreos.com/fleet/machines'
    assert k.machine_object_key(M1.id) == '/_coreos.com/fleet/machines/%s/object' % M1.id
    assert k.machine_metadata_dir(M1.id) == '/_coreos.com/fleet/machines/%s/metadata' % M1.id
    assert k.states_dir == '/_coreos.com/fleet/states'
    assert k.unit_states_dir('a.service') == '/_coreos.com/fleet/states/a.service'
    assert k.unit_state_key('a.service', M1.id) == '/_coreos.com/fleet/states/a.service/%s' % M1.id
    assert k.legacy_state_key('a.service') == '/_coreos.com/fleet/state/a.service'
    assert k.engine_lease_key == '/_coreos.com/fleet/lease/engine-leader'
    assert k.engine_version_key == '/_coreos.com/fleet/engine/version'


@pytest.mark.parametrize('prefix,expected', [
    ('/custom/', '/custom/job/a.service/object'),
    ('custom', '/custom/job/a.service/object'),
    ('/a/b', '/a/b/job/a.service/object'),
])
def test_custom_prefix(prefix, expected):
    assert K.FleetKeys(prefix).job_object_key('a.service') == expected


@pytest.mark.parametrize('bad', ['', 'a/b', '..', '.'])
def test_bad_key_components_refused(bad):
    with pytest.raises(R.RegistryFormatError):
        K.DEFAULT_KEYS.job_object_key(bad)


def test_unit_key_requires_a_hash():
    with pytest.raises(R.RegistryFormatError):
        K.DEFAULT_KEYS.unit_key('not-a-hash')


@pytest.mark.parametrize('key,info', [
    ('/_coreos.com/fleet/job/a.service/target', K.KeyInfo('job', unit='a.service', field='target')),
    ('/_coreos.com/fleet/job/a.service/target-state',
     K.KeyInfo('job', unit='a.service', field='target-state')),
    ('/_coreos.com/fleet/job/a.service', K.KeyInfo('job', unit='a.service')),
    ('/_coreos.com/fleet/job', K.KeyInfo('job')),
    ('/_coreos.com/fleet/unit/' + KAPPA_HASH, K.KeyInfo('unit', hash=KAPPA_HASH)),
    ('/_coreos.com/fleet/machines/abc/object', K.KeyInfo('machine', machine='abc', field='object')),
    ('/_coreos.com/fleet/machines/abc/metadata/region',
     K.KeyInfo('machine', machine='abc', field='metadata', name='region')),
    ('/_coreos.com/fleet/machines/abc', K.KeyInfo('machine', machine='abc')),
    ('/_coreos.com/fleet/states/a.service/abc', K.KeyInfo('state', unit='a.service', machine='abc')),
    ('/_coreos.com/fleet/state/a.service', K.KeyInfo('legacy-state', unit='a.service')),
    ('/_coreos.com/fleet/lease/engine-leader', K.KeyInfo('lease', name='engine-leader')),
    ('/_coreos.com/fleet/engine/version', K.KeyInfo('engine-version')),
    ('/_coreos.com/fleet/job/a.service/unknown', K.KeyInfo('other')),
    ('/_coreos.com/fleet', K.KeyInfo('root')),
    ('/_coreos.com/fleetx/job', None),
    ('/services/web', None),
])
def test_classify(key, info):
    assert K.DEFAULT_KEYS.classify(key) == info
