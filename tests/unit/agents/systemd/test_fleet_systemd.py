# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agent's systemd edge against a stand-in systemctl script."""

import os
import stat

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import parse_unit

from etcdfleet_agents.systemd.manager import Systemd, SystemdError

SLEEP = parse_unit('[Service]\nExecStart=/bin/sleep infinity\n')


@pytest.fixture
def systemctl(tmp_path):
    log = tmp_path / 'calls'
    script = tmp_path / 'systemctl'
    script.write_text('#!/bin/sh\necho "$@" >> %s\n'
                      'if [ "$1" = list-units ]; then\n'
                      '  printf "a.service loaded active running A unit with a description\\n"\n'
                      '  printf "other.service loaded active running not asked for\\n"\n'
                      'fi\n'
                      'if [ "$1" = show ]; then\n'
                      '  printf "Id=b.service\\nLoadState=not-found\\nActiveState=inactive\\nSubState=dead\\nMainPID=0\\n"\n'
                      'fi\n' % log)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), log


def test_systemd_files_links_and_states(tmp_path, systemctl):
    script, log = systemctl
    sd = Systemd(unit_dir=str(tmp_path / 'units'), link_dir=str(tmp_path / 'system'), systemctl=script)
    sd.write('a.service', SLEEP.text)
    link = tmp_path / 'system' / 'a.service'
    assert os.readlink(str(link)) == str(tmp_path / 'units' / 'a.service')
    assert sd.local_units() == {'a.service': SLEEP.text}
    sd.write('a.service', SLEEP.text)
    assert sd.states(['a.service', 'b.service']) == {
        'a.service': ('loaded', 'active', 'running', ''),
        'b.service': ('not-found', 'inactive', 'dead', '0')}
    sd.start(['a.service'])
    sd.remove('a.service')
    assert not os.path.lexists(str(link))
    assert sd.local_units() == {}
    calls = log.read_text().splitlines()
    # one list-units for both, then show only for the unit it did not list
    assert calls[0] == 'list-units --all --full --plain --no-legend --no-pager -- a.service b.service'
    assert calls[1].startswith('show ') and calls[1].endswith('-- b.service')
    assert 'start --no-block a.service' in calls


def test_systemd_that_does_not_read_new_files_on_demand_is_reloaded_once(tmp_path):
    # like systemd before 246: a unit it looked up once stays "not found" until daemon-reload
    log = tmp_path / 'calls'
    script = tmp_path / 'systemctl'
    script.write_text('#!/bin/sh\necho "$@" >> %s\n'
                      'if [ "$1" = daemon-reload ]; then touch %s/reloaded; fi\n'
                      'if [ "$1" = start ] && [ ! -e %s/reloaded ]; then\n'
                      '  echo "Failed to start $3: Unit $3 not found." >&2; exit 5\n'
                      'fi\n' % (log, tmp_path, tmp_path))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    sd = Systemd(unit_dir=str(tmp_path / 'units'), link_dir=str(tmp_path / 'system'), systemctl=str(script))
    sd.start(['a.service'])
    assert log.read_text().splitlines() == ['start --no-block a.service', 'daemon-reload',
                                            'start --no-block a.service']
    sd.start(['b.service'])
    assert log.read_text().splitlines()[3:] == ['start --no-block b.service']
    # a unit whose file went and came back while its old process was stopping
    (tmp_path / 'reloaded').unlink()
    script.write_text('#!/bin/sh\necho "$@" >> %s\n'
                      'if [ "$1" = daemon-reload ]; then touch %s/reloaded; fi\n'
                      'if [ "$1" = start ] && [ ! -e %s/reloaded ]; then\n'
                      '  echo "Failed to start $3: Unit $3 failed to load properly, please adjust/correct and'
                      ' reload service manager: Device or resource busy" >&2; exit 1\n'
                      'fi\n' % (log, tmp_path, tmp_path))
    sd.start(['d.service'])
    assert log.read_text().splitlines()[4:] == ['start --no-block d.service', 'daemon-reload',
                                                'start --no-block d.service']
    # any other failure is an error, and no reload
    (tmp_path / 'reloaded').unlink()
    script.write_text('#!/bin/sh\necho "$@" >> %s\necho "Access denied" >&2; exit 4\n' % log)
    with pytest.raises(SystemdError, match='Access denied'):
        sd.start(['c.service'])
    assert log.read_text().splitlines()[7:] == ['start --no-block c.service']
