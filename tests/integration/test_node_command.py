"""node_runtime's `command` entry point: an installed command (fleetctl here) reaches etcd with the
node's settings file, which the agent reads itself; nothing in that file is ever run by a shell."""

import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def test_an_installed_command_reads_the_settings_file_and_runs_nothing_from_it(runner, etcd_server, api, tmp_path):
    # The node's runtime directory: the daemons' package and the collection's library, as installed.
    runtime = tmp_path / 'runtime'
    runtime.mkdir()
    os.symlink(os.path.join(REPO, 'agents', 'etcdfleet_agents'), runtime / 'etcdfleet_agents')
    os.symlink(os.path.join(REPO, 'playbooks', 'collections', 'ansible_collections'), runtime / 'ansible_collections')
    marker = tmp_path / 'ran'
    settings = tmp_path / 'etcd.env'
    settings.write_text('ETCDFLEET_ENDPOINTS=%s\nETCDFLEET_API_VERSION=%s\n'
                        'ETCDFLEET_LOG_LEVEL=$(touch %s)\n' % (etcd_server.url, api, marker))
    command = tmp_path / 'fleetctl'
    result = runner.run([
        {'name': 'install', 'ansible.builtin.include_role': {'name': 'etcdfleet.cluster.node_runtime',
                                                             'tasks_from': 'command.yml'},
         # (task variables: the role's own vars/main.yml outranks a play's)
         'vars': {'node_runtime_dir': str(runtime), 'node_runtime_config_dir': str(tmp_path),
                  'node_runtime_python': sys.executable,
                  'node_runtime_command': {'module': 'fleetctl', 'path': str(command),
                                           'args': ['--etcd-key-prefix', '/it-command/fleet/']}}},
        {'name': 'line', 'ansible.builtin.debug': {'var': 'node_runtime_command_line'}},
    ])
    assert result.returncode == 0, result.stdout[-3000:]
    env = {'PATH': os.environ['PATH']}  # none of the node's settings in the caller's environment
    listed = subprocess.run([str(command), 'list-machines'], capture_output=True, text=True, env=env, timeout=60,
                            check=False)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ['MACHINE', 'IP', 'METADATA'], listed.stdout
    # the recorded command line (for checks and validate) works the same way
    line = result['line']['node_runtime_command_line']
    again = subprocess.run(line + ' list-machines', shell=True, capture_output=True, text=True, env=env, timeout=60,
                           check=False)
    assert again.returncode == 0 and again.stdout == listed.stdout, again.stderr
    assert not marker.exists(), 'a shell ran a line of the settings file'
