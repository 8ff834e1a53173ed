# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetctl's pure parts: arguments, remote commands, finding unit files (no etcd)."""

import pytest

from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_snapshot import Snapshot

from etcdfleet_agents.cli import fleetctl, remote


def test_fleetctl_arguments():
    args = fleetctl.build_parser().parse_args(
        ['start', '--no-block', '--block-attempts', '3', 'kappa-test@1.service', 'kappa-test@2.service'])
    assert args.command == 'start' and args.no_block and args.block_attempts == 3
    assert args.units == ['kappa-test@1.service', 'kappa-test@2.service']
    args = fleetctl.build_parser().parse_args(['list-units', '--fields', 'unit,machine', '--no-legend', '-l'])
    assert args.fields == 'unit,machine' and args.no_legend and args.full


def test_remote_commands_are_fixed_and_refuse_bad_names():
    assert remote.command_argv('status', 'web.service') == ['systemctl', 'status', '-l', '--no-pager',
                                                            'web.service']
    assert remote.command_argv('journal', 'web.service', 5)[-2:] == ['-n', '5']
    with pytest.raises(Exception):
        remote.command_argv('status', 'web.service; rm -rf /')
    with pytest.raises(ValueError):
        remote.command_argv('shell', 'web.service')


def test_fleetctl_finds_a_local_template_for_an_instance(tmp_path):
    (tmp_path / 'apache@.service').write_text('[Service]\nExecStart=/bin/true\n')
    snap = Snapshot(revision=1)
    unit = fleetctl.find_contents(None, str(tmp_path / 'apache@1'), 'apache@1.service', snap)
    assert unit.text == '[Service]\nExecStart=/bin/true\n'
    with pytest.raises(fleetctl.Failure, match='web.service'):
        fleetctl.find_contents(None, str(tmp_path / 'web.service'), 'web.service', snap)
