# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every benchmark of the project on a fresh lab, collected in one report (bench/RESULTS.md).

1. A fresh lab (playbooks/lab.yml: the nodes etcdfleet-core-NN are removed and created again).
2. playbooks/site.yml on the bare nodes, timed to the end of its verification; then a second run
   with nothing to change, timed, with the number of changed tasks (target: 0, under 90 s).
3. On the lab: the fleet service's memory, fleet scheduling throughput, fleet failover (docker
   kill of a machine -> its unit active elsewhere), and the lab benchmarks of LAB_BENCHMARKS that
   exist; at the end the agents are switched to the etcd v3 API and the throughput measured again.
4. On loopback (real etcd, HAProxy, Docker): registrator latency and memory, docker-discover
   latency, requests lost under churn (http/v2 and tcp/v3), the etcd_key batch form.

Each benchmark's own output goes into the report as it printed it, with its command, time and exit
status; the report starts with the machine, the date and the commit.

    make bench                                  # or: .venv/bin/python bench/run_all.py
    .venv/bin/python bench/run_all.py --quick   # smaller counts, for a first look
"""

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)
LAB_PREFIX = 'etcdfleet-core'


def benchmarks(quick):
    """(title, argv, timeout seconds) of every benchmark, in the order they run."""
    py = sys.executable

    def script(name, *args):
        return [py, os.path.join(HERE, name)] + list(args)

    lab = ['--prefix', LAB_PREFIX]
    return [
        ('fleet: memory of the fleet service (with the demo units)',
         script('fleet_agent_rss.py', *lab), 120),
        ('fleet: scheduling throughput (300 units, submit -> all launched; etcd v2 API)',
         script('fleet_throughput.py', '--units', '60' if quick else '300', *lab), 900),
        ('fleet: failover (docker kill of a machine -> unit active elsewhere)',
         script('fleet_failover.py', '--kills', '2' if quick else '5', *lab), 1800),
    ] + [(title, script(name, *lab), timeout) for title, name, timeout in LAB_BENCHMARKS
         if os.path.exists(os.path.join(HERE, name))] + [
        ('registrator: docker run -> key in etcd, and memory',
         script('registrator_latency.py', '--containers', '50' if quick else '60'), 1800),
        ('docker_discover: key -> routed and docker run -> answered, and memory',
         script('discover_latency.py', '--count', '30'), 1200),
        ('docker_discover: the same, reloaded through the master CLI (as on the nodes)',
         script('discover_latency.py', '--count', '30', '--reload', 'master-cli'), 1200),
        ('docker_discover: failed requests under churn (http, v2)',
         script('discover_churn.py', '--duration', '20' if quick else '60', '--mode', 'http', '--api', 'v2'), 600),
        ('docker_discover: failed requests under churn (tcp, v3)',
         script('discover_churn.py', '--duration', '20' if quick else '60', '--mode', 'tcp', '--api', 'v3'), 600),
        ('etcd_key: one batch task vs one task per key',
         script('etcd_key_batch.py', '--count', '50' if quick else '200'), 3600),
    ]


# Benchmarks on the lab added by components that have one: (title, script, timeout).
LAB_BENCHMARKS = [
    ('ambassador: provider moved -> first answer through the ambassador', 'ambassador_failover.py', 1800),
    ('fleet: fleetctl destroy of a provider and its sidekick -> container stopped, units gone',
     'fleet_destroy_pair.py', 1800),
    ('fleet: etcd leader restart, rolling restart, member paused 10 s, etcd down 10 s and 60 s '
     '-> units moved or restarted (300 units)', 'fleet_etcd_outages.py', 1800),
    ('flannel: lease -> route on the other nodes, overlay throughput against the nodes\' own, daemon memory',
     'flannel_overlay.py', 900),
    ('day-2: a node drained, taken back, removed and added again, 3 -> 5 -> 3 nodes -> time and failed requests',
     'node_lifecycle.py', 1800),
    ('etcd: 10000 keys backed up, etcd destroyed and restored -> times, failed requests, what came back',
     'etcd_backup.py', 1800),
]


def run(argv, timeout, env=None):
    """Run ``argv``; return (exit status, seconds, combined output)."""
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout, env=env, check=False)
        status, output = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b'').decode('utf-8', 'replace')
        status = 'timeout after %d s' % timeout
    return status, time.monotonic() - start, output


def playbook(name, *args):
    return [os.path.join(BIN, 'ansible-playbook'), os.path.join(ROOT, 'playbooks', name)] + list(args)


def recap(output):
    """Sum of ok/changed/failed/unreachable over the PLAY RECAP lines."""
    totals = dict(ok=0, changed=0, failed=0, unreachable=0)
    for match in re.finditer(r'^\S+\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', output, re.M):
        for key, value in zip(('ok', 'changed', 'unreachable', 'failed'), match.groups()):
            totals[key] += int(value)
    return totals


def site_excerpt(output):
    """The cluster summary printed by verify.yml and the PLAY RECAP of a site.yml run."""
    summary = re.search(r'^TASK \[[^\]]*Show the cluster\].*?$(.*?)^(?:TASK|PLAY) ', output, re.M | re.S)
    recap_lines = [line for line in output.splitlines() if re.match(r'^\S+\s+:\s+ok=', line)]
    return ((summary.group(1).strip() + '\n\n') if summary else '') + '\n'.join(recap_lines)


def machine():
    def read(path):
        try:
            with open(path) as handle:
                return handle.read()
        except OSError:
            return ''
    mem = re.search(r'MemTotal:\s+(\d+)', read('/proc/meminfo'))
    cpu = re.search(r'model name\s*:\s*(.+)', read('/proc/cpuinfo'))
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, universal_newlines=True, check=False).stdout.strip()
    return {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'system': '%s %s %s' % (platform.system(), platform.release(), platform.machine()),
        'cpus': '%d x %s' % (os.cpu_count() or 0, cpu.group(1).strip() if cpu else 'unknown CPU'),
        'memory': '%.1f GiB' % (int(mem.group(1)) / 1048576.0) if mem else 'unknown',
        'commit': commit or 'unknown',
    }


def load():
    return ' '.join('%.2f' % value for value in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='smaller counts and shorter runs')
    parser.add_argument('--output', default=os.path.join(HERE, 'RESULTS.md'))
    parser.add_argument('--keep-lab', action='store_true', help='leave the lab running at the end')
    parser.add_argument('--only', help='run only the benchmarks whose title contains this text (no lab rebuild)')
    opts = parser.parse_args()

    env = dict(os.environ)
    env.setdefault('ETCDFLEET_LAB_DIR', os.path.join(ROOT, '.lab'))
    env['ETCDFLEET_MOLECULE_NODES'] = LAB_PREFIX
    inventory = os.path.join(env['ETCDFLEET_LAB_DIR'], 'inventory.yml')
    info = machine()
    info['load'] = load()
    sections, summary = [], []

    def step(title, argv, timeout):
        print('==> %s' % title, flush=True)
        status, seconds, output = run(argv, timeout, env)
        print(output[-2000:], flush=True)
        sections.append((title, argv, status, seconds, output))
        return status, seconds, output

    if not opts.only:
        step('lab: remove the old lab', playbook('lab.yml', '-e', 'lab_state=absent'), 600)
        status, seconds, output = step('lab: three fresh nodes', playbook('lab.yml'), 1200)
        if status != 0:
            raise SystemExit('the lab did not come up; see the output above')
        status, first, output = step('site.yml on bare nodes, to verified', playbook('site.yml', '-i', inventory), 2400)
        summary.append(('site.yml, bare nodes to verified', '%.0f s' % first,
                        'exit %s, changed=%d' % (status, recap(output)['changed'])))
        status, second, output = step('site.yml again, nothing to change', playbook('site.yml', '-i', inventory), 1200)
        totals = recap(output)
        summary.append(('site.yml, second run (target: changed=0, under 90 s)', '%.0f s' % second,
                        'exit %s, changed=%d' % (status, totals['changed'])))

    for title, argv, timeout in benchmarks(opts.quick):
        if opts.only and opts.only not in title:
            continue
        status, seconds, output = step(title, argv, timeout)
        summary.append((title, '%.0f s' % seconds, 'exit %s' % status))

    # The same throughput with the agents on the etcd v3 API (site.yml switches them over).
    v3_title = 'fleet: scheduling throughput (300 units, submit -> all launched; etcd v3 API)'
    if not opts.only or opts.only in v3_title:
        status, seconds, output = step('lab: the fleet agents switched to the etcd v3 API',
                                       playbook('site.yml', '-i', inventory, '-e', 'node_runtime_etcd_api_version=v3'),
                                       1200)
        if status == 0:
            status, seconds, output = step(v3_title, [sys.executable, os.path.join(HERE, 'fleet_throughput.py'),
                                                      '--units', '60' if opts.quick else '300',
                                                      '--prefix', LAB_PREFIX, '--api-version', 'v3'], 900)
        summary.append((v3_title, '%.0f s' % seconds, 'exit %s' % status))

    if not opts.only and not opts.keep_lab:
        step('lab: remove it', playbook('lab.yml', '-e', 'lab_state=absent'), 600)

    lines = ['# Benchmark results', '',
             'Written by `bench/run_all.py%s` on %s.' % (' --quick' if opts.quick else '', info['date']), '',
             '| machine | |', '|---|---|']
    lines += ['| %s | %s |' % (key, info[key]) for key in ('system', 'cpus', 'memory', 'commit')]
    lines += ['| load average at start | %s |' % info['load'], '| load average at end | %s |' % load(), '',
              '| step | time | result |', '|---|---|---|']
    lines += ['| %s | %s | %s |' % row for row in summary]
    lines.append('')
    for title, argv, status, seconds, output in sections:
        if title.startswith('lab:'):
            continue
        shown = site_excerpt(output) if title.startswith('site.yml') else output
        command = ' '.join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a
                           for a in argv[1:] if not a.startswith(BIN))
        lines += ['## %s' % title, '', '`%s` (%.0f s, exit %s)' % (command, seconds, status),
                  '', '```', shown.strip()[-6000:], '```', '']
    with open(opts.output, 'w') as handle:
        handle.write('\n'.join(lines))
    print('report written to %s' % os.path.relpath(opts.output, ROOT))


if __name__ == '__main__':
    main()
