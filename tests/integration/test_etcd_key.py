# -*- coding: utf-8 -*-
# Copyright (c) etcdfleet maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""etcd_key and etcd_key_info through real ansible-playbook runs, for v2 and v3."""

from __future__ import annotations

import time

from etcd_server import free_port
from integration_helpers import no_traceback, start_in_thread

KEY = 'etcdfleet.cluster.etcd_key'
INFO = 'etcdfleet.cluster.etcd_key_info'


def task(name, module, ignore_errors=False, **args):
    result = {'name': name, module: args}
    if ignore_errors:
        result['ignore_errors'] = True
    return result


def test_set_is_idempotent_and_check_mode_changes_nothing(runner, defaults, oracle, prefix):
    key = prefix + '/a'
    res = runner.run([
        dict(task('check', KEY, key=key, value='one'), check_mode=True, diff=True),
        task('set', KEY, key=key, value='one'),
        task('again', KEY, key=key, value='one'),
        dict(task('change_check', KEY, key=key, value='two'), check_mode=True, diff=True),
        task('read', INFO, key=key),
    ], defaults=defaults)
    assert res['check']['changed'] is True
    assert res['check']['diff']['after'] == 'one\n' and res['check']['diff']['before'] == ''
    # the real write found nothing before it: check mode wrote nothing
    assert res['set']['changed'] is True and res['set']['prev_value'] is None
    assert res['set']['exists'] is True
    assert res['again']['changed'] is False
    assert res['again']['index'] == res['set']['index']
    assert res['change_check']['changed'] is True
    assert res['change_check']['diff']['before'] == 'one\n'
    assert res['change_check']['diff']['after'] == 'two\n'
    assert res['read']['value'] == 'one' and res['read']['exists'] is True
    assert oracle.get(key) == 'one'
    assert oracle.index(key) == res['set']['index']


def test_ttl_expiry_and_refresh(runner, defaults, oracle, prefix):
    key = prefix + '/renew'
    short = prefix + '/short'
    res = runner.run([
        task('short', KEY, key=short, value='gone-soon', ttl=15),
        task('short_read', INFO, key=short),
        task('set', KEY, key=key, value='v', ttl=60),
        task('same', KEY, key=key, value='v', ttl=60),
        {'name': 'pause', 'ansible.builtin.wait_for': {'timeout': 5}},
        dict(task('before', INFO, key=key), register='before'),
        task('refresh', KEY, key=key, ttl=60, refresh=True),
        task('after', INFO, key=key),
        task('write', KEY, key=key, value='w'),
        # a watcher from before the refresh first sees the later write: the refresh woke nobody
        task('watch', INFO, key=key, wait=True, wait_timeout=5, wait_index='{{ before.revision + 1 }}'),
        task('refresh_missing', KEY, ignore_errors=True, key=prefix + '/none', ttl=5, refresh=True),
    ], defaults=defaults)
    # TTLs are long enough for a busy machine: the reads come seconds after the writes.
    assert res['short']['changed'] is True and res['short']['ttl'] == 15
    assert res['short_read']['exists'] is True and 0 < res['short_read']['ttl'] <= 15
    assert res['set']['changed'] is True
    assert res['same']['changed'] is False, 'same value and a TTL already set is no change'
    assert res['before']['ttl'] <= 55
    assert res['refresh']['changed'] is True
    assert res['after']['ttl'] > res['before']['ttl']
    assert res['after']['value'] == 'v'
    event = res['watch']['event']
    assert event['value'] == 'w' and event['prev_value'] == 'v', event
    assert event['index'] == res['write']['index']
    assert res['write']['ttl'] is None, 'a new value without ttl makes the key permanent'
    assert res['refresh_missing']['failed'] is True
    assert 'does not exist' in res['refresh_missing']['msg']
    no_traceback(res['refresh_missing'])
    deadline = time.monotonic() + 20
    while oracle.get(short) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert oracle.get(short) is None, 'key with ttl=15 did not expire'
    assert oracle.get(key) == 'w'
    assert oracle.ttl(key) is None


def test_compare_and_swap(runner, defaults, oracle, prefix):
    key = prefix + '/cas'
    oracle.put(key, 'green')
    old_index = oracle.index(key)
    res = runner.run([
        dict(task('swap_ok', KEY, key=key, value='blue', prev_value='green'), register='swap_ok'),
        task('swap_again', KEY, key=key, value='blue', prev_value='green'),
        task('swap_fail', KEY, ignore_errors=True, key=key, value='red', prev_value='green'),
        dict(task('swap_fail_check', KEY, ignore_errors=True, key=key, value='red', prev_value='green'),
             check_mode=True),
        task('create_only_fail', KEY, ignore_errors=True, key=key, value='x', prev_exist=False),
        task('create_only_new', KEY, key=key + '-new', value='n', prev_exist=False),
        task('update_only_missing', KEY, ignore_errors=True, key=key + '-missing', value='n', prev_exist=True),
        task('index_fail', KEY, ignore_errors=True, key=key, value='y', prev_index=old_index),
        task('index_ok', KEY, key=key, value='y', prev_index='{{ swap_ok.index }}'),
        task('cad_fail', KEY, ignore_errors=True, key=key, state='absent', prev_value='nope'),
        task('cad_ok', KEY, key=key, state='absent', prev_value='y'),
    ], defaults=defaults)
    assert res['swap_ok']['changed'] is True and res['swap_ok']['prev_value'] == 'green'
    assert res['swap_again']['changed'] is False
    for name in ('swap_fail', 'swap_fail_check'):
        fail = res[name]
        assert fail['failed'] is True
        assert "expected value 'green'" in fail['msg'] and "actual value 'blue'" in fail['msg'], fail['msg']
        assert fail['expected'] == {'value': 'green'}
        assert fail['actual']['value'] == 'blue' and fail['actual']['exists'] is True
        no_traceback(fail)
    assert res['create_only_fail']['failed'] is True
    assert res['create_only_fail']['expected'] == {'exists': False}
    assert res['create_only_fail']['actual']['value'] == 'blue'
    assert res['create_only_new']['changed'] is True
    assert res['update_only_missing']['failed'] is True
    assert res['update_only_missing']['actual'] == {'exists': False}
    assert res['index_fail']['failed'] is True
    assert res['index_fail']['expected'] == {'index': old_index}
    assert res['index_fail']['actual']['index'] == res['swap_ok']['index']
    assert res['index_ok']['changed'] is True and res['index_ok']['prev_value'] == 'blue'
    assert res['cad_fail']['failed'] is True and "actual value 'y'" in res['cad_fail']['msg']
    assert res['cad_ok']['changed'] is True and res['cad_ok']['deleted'] == 1
    assert oracle.get(key) is None
    assert oracle.get(key + '-new') == 'n'
    assert oracle.get(key + '-missing') is None


def test_recursive_read_and_delete(runner, defaults, oracle, prefix):
    app = prefix + '/app'
    tree = {app + '/port': '80', app + '/mode': 'blue', app + '/db/host': 'h', app + '/db/port': '5432'}
    res = runner.run([
        task('write', KEY, keys=tree),
        task('flat', INFO, key=app),
        task('deep', INFO, key=app, recursive=True),
        task('missing', INFO, key=prefix + '/nothing'),
        task('value_on_dir', KEY, ignore_errors=True, key=app, value='x'),
        task('delete_nonrec', KEY, ignore_errors=True, key=app, state='absent'),
        dict(task('delete_check', KEY, key=app, state='absent', recursive=True), check_mode=True),
        dict(task('delete', KEY, key=app, state='absent', recursive=True), diff=True),
        task('delete_again', KEY, key=app, state='absent', recursive=True),
    ], defaults=defaults)
    assert res['write']['changed'] is True and len(res['write']['changed_keys']) == 4
    assert res['deep']['dir'] is True and res['deep']['kv'] == tree
    assert res['flat']['kv'] == {app + '/port': '80', app + '/mode': 'blue'}
    subdirs = [c for c in res['flat']['children'] if c['dir']]
    assert [c['key'] for c in subdirs] == [app + '/db']
    assert res['missing']['exists'] is False and res['missing']['kv'] == {}
    assert res['value_on_dir']['failed'] is True and 'is a directory' in res['value_on_dir']['msg']
    assert res['delete_nonrec']['failed'] is True and 'recursive=true' in res['delete_nonrec']['msg']
    for name in ('value_on_dir', 'delete_nonrec'):
        no_traceback(res[name])
    assert res['delete_check']['changed'] is True and res['delete_check']['deleted'] == 4
    # the real delete still found all four keys: check mode removed nothing
    assert res['delete']['changed'] is True and res['delete']['deleted'] == 4
    assert app + '/db/host=h' in res['delete']['diff']['before']
    assert res['delete_again']['changed'] is False
    assert oracle.keys_below(app) == {}


def test_directories(runner, defaults, oracle, prefix, api):
    folder = prefix + '/dir'
    res = runner.run([
        task('mkdir', KEY, key=folder, dir=True),
        task('mkdir_again', KEY, key=folder, dir=True),
        task('child', KEY, key=folder + '/x', value='1'),
        task('mkdir_on_value', KEY, ignore_errors=True, key=folder + '/x', dir=True),
        task('absent_dir_nonrec', KEY, ignore_errors=True, key=folder, state='absent', dir=True),
        task('empty', KEY, key=folder + '/empty', dir=True),
        task('remove_empty', KEY, key=folder + '/empty', state='absent'),
    ], defaults=defaults)
    assert res['mkdir_again']['changed'] is False
    assert res['mkdir_on_value']['failed'] is True and 'holds a value' in res['mkdir_on_value']['msg']
    assert res['absent_dir_nonrec']['failed'] is True
    assert 'recursive=true' in res['absent_dir_nonrec']['msg']
    if api == 'v2':
        assert res['mkdir']['changed'] is True and res['mkdir']['dir'] is True
        assert res['empty']['changed'] is True
        assert res['remove_empty']['changed'] is True
        assert oracle.is_dir(folder)
    else:
        assert res['mkdir']['changed'] is False and 'no directories' in res['mkdir']['msg']
        assert res['empty']['changed'] is False
        assert res['remove_empty']['changed'] is False
    assert oracle.keys_below(folder) == {folder + '/x': '1'}


def test_batch_form(runner, defaults, oracle, prefix):
    items = dict(('%s/b/%03d' % (prefix, i), str(i)) for i in range(100))
    first = sorted(items)[0]
    second = sorted(items)[1]
    changed_one = dict(items)
    changed_one[first] = 'changed'
    res = runner.run([
        dict(task('check', KEY, keys=items), check_mode=True, diff=True),
        task('write', KEY, keys=items, ttl=60),
        task('again', KEY, keys=items, ttl=60),
        task('one', KEY, keys=changed_one),
        dict(task('remove_check', KEY, keys=[first, second, prefix + '/b/none'], state='absent'), check_mode=True),
        task('remove', KEY, keys=[first, second, prefix + '/b/none'], state='absent'),
        task('remove_again', KEY, keys=[first, second], state='absent'),
        task('bad_value', KEY, ignore_errors=True, keys={prefix + '/bad': {'nested': 1}}),
        task('bad_with_cas', KEY, ignore_errors=True, keys=items, prev_value='x'),
    ], defaults=defaults)
    assert res['check']['changed'] is True and len(res['check']['changed_keys']) == 100
    assert len(res['check']['diff']['after']) == 100 and res['check']['diff']['before'] == {}
    assert len(res['write']['changed_keys']) == 100, 'check mode must not have written'
    assert res['write']['count'] == 100
    assert res['again']['changed'] is False and res['again']['changed_keys'] == []
    assert res['one']['changed_keys'] == [first]
    assert res['remove_check']['changed_keys'] == sorted([first, second])
    assert res['remove']['changed'] is True and res['remove']['deleted'] == 2
    assert res['remove_again']['changed'] is False
    assert res['bad_value']['failed'] is True and 'must be a string' in res['bad_value']['msg']
    assert res['bad_with_cas']['failed'] is True
    remaining = oracle.keys_below(prefix + '/b')
    assert len(remaining) == 98
    assert remaining['%s/b/050' % prefix] == '50'
    ttl = oracle.ttl('%s/b/050' % prefix)
    assert ttl is not None and 0 < ttl <= 60


def test_wait_woken_by_another_client(runner, defaults, oracle, prefix):
    key = prefix + '/w'
    oracle.put(key, 'start')
    base = oracle.watchers()
    thread, box = start_in_thread(runner.run, [
        dict(task('wait_key', INFO, key=key, wait=True, wait_timeout=60), register='wait_key'),
        task('wait_tree', INFO, key=prefix, recursive=True, wait=True, wait_timeout=60,
             wait_index='{{ wait_key.event.index + 1 }}'),
        task('wait_past', INFO, key=key, wait=True, wait_timeout=5, wait_index='{{ wait_key.event.index }}'),
        task('wait_timeout', INFO, ignore_errors=True, key=prefix + '/never', wait=True, wait_timeout=1),
    ], defaults)
    assert oracle.wait_for_watchers(base + 1, timeout=60), 'the wait task never started watching'
    written = oracle.put(key, 'changed')
    # give the recursive watch the chance to be in place before the next write
    deadline = time.monotonic() + 20
    while oracle.watchers() > base and time.monotonic() < deadline:
        time.sleep(0.05)
    oracle.wait_for_watchers(base + 1, timeout=20)
    tree_written = oracle.put(prefix + '/sub/x', 'deep')
    thread.join(120)
    assert box and box[0][0] == 'ok', box
    res = box[0][1]
    event = res['wait_key']['event']
    assert event['action'] == 'update' and event['value'] == 'changed' and event['prev_value'] == 'start'
    assert event['index'] == written
    assert res['wait_key']['changed'] is False and res['wait_key']['timed_out'] is False
    tree = res['wait_tree']['event']
    assert tree['key'] == prefix + '/sub/x' and tree['action'] == 'create' and tree['value'] == 'deep'
    assert tree['index'] == tree_written
    assert res['wait_past']['event']['index'] == written
    assert res['wait_timeout']['failed'] is True and res['wait_timeout']['timed_out'] is True
    assert 'within 1' in res['wait_timeout']['msg']
    no_traceback(res['wait_timeout'])


def test_bad_input_and_faults(runner, defaults, etcd_server, api, prefix, shadow_etcd_lib, oracle):
    dead1 = 'http://127.0.0.1:%d' % free_port()
    dead2 = 'http://127.0.0.1:%d' % free_port()
    key = prefix + '/k'
    res = runner.run([
        task('unreachable', INFO, ignore_errors=True, key=key, endpoints=[dead1, dead2]),
        task('failover', KEY, key=key, value='v', endpoints=[dead1, etcd_server.url]),
        task('comma_list', INFO, key=key, endpoints=['%s,%s' % (dead2, etcd_server.url)]),
        task('ttl_zero', KEY, ignore_errors=True, key=key, value='v', ttl=0),
        task('ttl_text', KEY, ignore_errors=True, key=key, value='v', ttl='soon'),
        task('no_value', KEY, ignore_errors=True, key=key),
        task('missing_ca', KEY, ignore_errors=True, key=key, value='v', ca_cert='/nonexistent/ca.pem'),
        task('bad_scheme', INFO, ignore_errors=True, key=key, endpoints=['ftp://127.0.0.1:2379']),
        task('password_only', INFO, ignore_errors=True, key=key, password='x'),
        dict(task('without_python_etcd', KEY, ignore_errors=True, key=key, value='other'),
             environment={'PYTHONPATH': shadow_etcd_lib}),
        task('bad_timeout', INFO, ignore_errors=True, key=key, timeout=0),
    ], defaults=defaults)
    fail = res['unreachable']
    assert fail['failed'] is True and dead1 in fail['msg'] and dead2 in fail['msg'], fail['msg']
    assert 'connection refused' in fail['msg']
    assert fail['endpoints_tried'] == [dead1, dead2]
    assert res['failover']['changed'] is True
    assert res['comma_list']['value'] == 'v'
    assert 'positive whole number' in res['ttl_zero']['msg'] and '0' in res['ttl_zero']['msg']
    assert res['ttl_text']['failed'] is True and 'ttl' in res['ttl_text']['msg']
    assert 'value is required' in res['no_value']['msg']
    assert '/nonexistent/ca.pem' in res['missing_ca']['msg'] and 'does not exist' in res['missing_ca']['msg']
    assert 'http or https' in res['bad_scheme']['msg']
    assert 'username' in res['password_only']['msg']
    assert 'timeout' in res['bad_timeout']['msg']
    lib = res['without_python_etcd']
    if api == 'v2':
        assert lib['failed'] is True and 'python-etcd' in lib['msg'] and 'api_version=v3' in lib['msg']
        assert oracle.get(key) == 'v'
    else:
        # the v3 API needs no extra library
        assert lib.get('failed') is not True and lib['changed'] is True
        assert oracle.get(key) == 'other'
    for name in ('unreachable', 'ttl_zero', 'ttl_text', 'no_value', 'missing_ca', 'bad_scheme',
                 'password_only', 'bad_timeout'):
        assert res[name]['failed'] is True, name
        no_traceback(res[name])
