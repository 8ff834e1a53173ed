# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleet_unit and fleet_info through real ansible-playbook runs, against a real etcd."""

from __future__ import annotations

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.etcd import EtcdClient
from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_store import FleetStore

from integration_helpers import no_traceback
from fleet_helpers import Node, wait_until

UNIT = 'etcdfleet.cluster.fleet_unit'
INFO = 'etcdfleet.cluster.fleet_info'
SLEEP = '[Service]\nExecStart=/bin/sleep infinity\n'
KAPPA = SLEEP + '[X-Fleet]\nConflicts=kappa-test@*.service\n'


def task(title, module, ignore_errors=False, **args):
    result = {'name': title, module: args}
    if ignore_errors:
        result['ignore_errors'] = True
    return result


@pytest.fixture
def fleet_prefix(prefix):
    return prefix + '/fleet/'


@pytest.fixture
def store(etcd_server, api, fleet_prefix):
    client = EtcdClient(endpoints=[etcd_server.url], api_version=api)
    yield FleetStore(client, fleet_prefix)
    client.close()


@pytest.fixture
def nodes(etcd_server, api, fleet_prefix, store):
    started = [Node(etcd_server.url, api, fleet_prefix, c * 32, ttl=3).start() for c in 'de']
    assert wait_until(lambda: len(store.snapshot().machines) == 2)
    yield started
    for node in started:
        node.kill()


def test_submit_is_idempotent_and_check_mode_writes_nothing(runner, defaults, store, fleet_prefix):
    args = dict(name='web.service', content=SLEEP, state='inactive', prefix=fleet_prefix)
    res = runner.run([
        dict(task('check', UNIT, **args), check_mode=True, diff=True),
        task('submit', UNIT, **args),
        task('again', UNIT, **args),
        task('info', INFO, prefix=fleet_prefix),
    ], defaults=defaults)
    assert res['check']['changed'] is True
    assert 'ExecStart=/bin/sleep infinity' in res['check']['diff']['after']
    assert res['submit']['changed'] is True
    assert res['submit']['desired_state'] == 'inactive'
    assert res['again']['changed'] is False
    assert res['again']['hash'] == res['submit']['hash']
    units = res['info']['units']
    assert [u['name'] for u in units] == ['web.service']
    assert units[0]['hash'] == res['submit']['hash']
    assert list(store.snapshot().jobs) == ['web.service']


def test_check_mode_alone_leaves_registry_empty(runner, defaults, store, fleet_prefix):
    res = runner.run([dict(task('check', UNIT, name='web.service', content=SLEEP, prefix=fleet_prefix),
                           check_mode=True)], defaults=defaults)
    assert res['check']['changed'] is True
    assert store.snapshot().jobs == {}


def test_bad_input_names_the_problem(runner, defaults, store, fleet_prefix):
    res = runner.run([
        task('name', UNIT, ignore_errors=True, name='web', content=SLEEP, prefix=fleet_prefix),
        task('rules', UNIT, ignore_errors=True, name='g.service', prefix=fleet_prefix,
             content=SLEEP + '[X-Fleet]\nGlobal=true\nMachineOf=web.service\n'),
        task('template', UNIT, ignore_errors=True, name='t@.service', content=SLEEP, prefix=fleet_prefix),
        task('nothing', UNIT, ignore_errors=True, name='x@1.service', prefix=fleet_prefix),
    ], defaults=defaults)
    assert 'invalid unit name' in res['name']['msg'] and "'web'" in res['name']['msg']
    assert 'Global cannot be used with MachineOf' in res['rules']['msg']
    assert 'template' in res['template']['msg']
    assert 'x@.service' in res['nothing']['msg']
    for name in ('name', 'rules', 'template', 'nothing'):
        assert res[name]['failed'] is True
        no_traceback(res[name])
    assert store.snapshot().jobs == {}


def test_changed_contents_need_replace(runner, defaults, store, fleet_prefix):
    res = runner.run([
        task('submit', UNIT, name='web.service', content=SLEEP, state='inactive', prefix=fleet_prefix),
        task('refused', UNIT, ignore_errors=True, name='web.service', state='inactive', prefix=fleet_prefix,
             content='[Service]\nExecStart=/bin/sleep 1d\n'),
        dict(task('replace', UNIT, name='web.service', state='inactive', replace=True, prefix=fleet_prefix,
                  content='[Service]\nExecStart=/bin/sleep 1d\n'), diff=True),
    ], defaults=defaults)
    assert res['refused']['failed'] is True
    assert 'replace=true' in res['refused']['msg']
    assert res['replace']['changed'] is True
    assert res['replace']['hash'] != res['submit']['hash']
    assert 'sleep infinity' in res['replace']['diff']['before']
    assert 'sleep 1d' in res['replace']['diff']['after']
    assert store.snapshot().jobs['web.service'].unit_hash == res['replace']['hash']


def test_launch_and_wait_returns_machine_and_states(runner, defaults, nodes, fleet_prefix, store):
    res = runner.run([
        task('template', UNIT, name='kappa-test@.service', content=KAPPA, state='inactive', prefix=fleet_prefix),
        task('one', UNIT, name='kappa-test@1.service', wait=True, wait_timeout=30, prefix=fleet_prefix),
        task('two', UNIT, name='kappa-test@2.service', wait=True, wait_timeout=30, prefix=fleet_prefix),
        task('three', UNIT, ignore_errors=True, name='kappa-test@3.service', wait=True, wait_timeout=30,
             prefix=fleet_prefix),
        task('info', INFO, prefix=fleet_prefix, units=['kappa-test@[0-9]*']),
        task('stop', UNIT, name='kappa-test@2.service', state='loaded', wait=True, prefix=fleet_prefix),
        task('gone', UNIT, name='kappa-test@1.service', state='absent', wait=True, prefix=fleet_prefix),
    ], defaults=defaults)
    one, two, three = res['one'], res['two'], res['three']
    assert one['changed'] and one['current_state'] == 'launched' and one['active_state'] == 'active'
    assert one['machine_id'] != two['machine_id']
    assert one['machine_ip'] and one['hash'] == two['hash']
    assert three['failed'] is True
    assert 'cannot be placed' in three['msg'] and 'Conflicts' in three['msg']
    assert sorted(three['reason_machines']) == sorted(n.machine_id for n in nodes)
    by_name = {u['name']: u for u in res['info']['units']}
    assert by_name['kappa-test@3.service']['reason'] == three['reason']
    assert res['info']['engine_leader'] in [n.machine_id for n in nodes]
    assert len(res['info']['machines']) == 2
    assert res['stop']['current_state'] == 'loaded' and res['stop']['desired_state'] == 'loaded'
    assert res['gone']['changed'] is True
    assert wait_until(lambda: all('kappa-test@1.service' not in n.running() for n in nodes))


def test_start_after_a_stop_that_failed_waits_for_the_new_start(runner, defaults, nodes, fleet_prefix):
    """A container's exit status makes systemd report a stopped unit failed; starting it again
    with wait reports the new start, not that stale failure."""
    for node in nodes:
        node.systemd.fail_stop.add('web.service')
        node.systemd.start_delay = 2.0
    res = runner.run([
        task('start', UNIT, name='web.service', content='[Service]\nExecStart=/bin/sleep infinity\n',
             wait=True, wait_timeout=30, prefix=fleet_prefix),
        task('stop', UNIT, name='web.service', state='loaded', wait=True, prefix=fleet_prefix),
        # systemd's failed state is reported after the stop, the loaded state before it
        dict(task('stopped', INFO, prefix=fleet_prefix, units=['web.service']), register='stopped',
             until="stopped.units[0].active_state == 'failed'", retries=20, delay=1),
        task('again', UNIT, name='web.service', wait=True, wait_timeout=30, prefix=fleet_prefix),
    ], defaults=defaults)
    assert res['start']['active_state'] == 'active'
    assert res['stopped']['units'][0]['active_state'] == 'failed', res['stopped']['units']
    assert res['again'].get('failed') is not True, res['again'].get('msg')
    assert res['again']['changed'] is True and res['again']['active_state'] == 'active'


MACHINE = 'etcdfleet.cluster.fleet_machine'


def test_fleet_machine_drains_and_takes_back(runner, defaults, nodes, fleet_prefix, store):
    res = runner.run([
        task('one', UNIT, name='kappa-test@1.service', content=KAPPA, wait=True, prefix=fleet_prefix),
        task('two', UNIT, name='kappa-test@2.service', content=KAPPA, wait=True, prefix=fleet_prefix),
    ], defaults=defaults)
    victim = res['one']['machine_id']
    res = runner.run([
        task('bad', MACHINE, ignore_errors=True, machine='1.2.3.4;reboot', drained=True, prefix=fleet_prefix),
        task('unknown', MACHINE, ignore_errors=True, machine='10.255.0.1', drained=True, prefix=fleet_prefix),
        dict(task('check', MACHINE, machine=victim[:8], drained=True, prefix=fleet_prefix), check_mode=True,
             diff=True),
        task('drain', MACHINE, machine=victim, drained=True, wait_timeout=30, prefix=fleet_prefix),
        task('again', MACHINE, machine=victim, drained=True, prefix=fleet_prefix),
        task('info', INFO, prefix=fleet_prefix),
        task('back', MACHINE, machine=victim, drained=False, prefix=fleet_prefix),
        task('back again', MACHINE, machine=victim, drained=False, prefix=fleet_prefix),
    ], defaults=defaults)
    assert res['bad']['failed'] and "'1.2.3.4;reboot' is neither a machine ID nor an IP address" in res['bad']['msg']
    assert res['unknown']['failed'] and "'10.255.0.1' is not registered" in res['unknown']['msg']
    no_traceback(res['bad'])
    assert res['check']['changed'] and res['check']['diff']['after'] == 'drained: true\n'
    drain = res['drain']
    assert drain['changed'] and drain['machine'] == victim
    # kappa-test@1 conflicts with the instance on the only other machine: it stops and waits there
    assert drain['moved'] == []
    assert [u['name'] for u in drain['unplaced']] == ['kappa-test@1.service']
    assert 'drained' in drain['unplaced'][0]['reason'] and 'Conflicts' in drain['unplaced'][0]['reason']
    assert not res['again']['changed']
    machines = {m['id']: m for m in res['info']['machines']}
    assert machines[victim]['metadata'].get('drained') == 'true'
    assert res['back']['changed'] and not res['back again']['changed']
    assert wait_until(lambda: store.snapshot().current_state('kappa-test@1.service') == 'launched')
    assert store.snapshot().jobs['kappa-test@1.service'].target == victim
