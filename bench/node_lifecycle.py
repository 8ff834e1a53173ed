# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's day-2 operations on the lab, timed, with the requests they cost.

On the lab made by ``make cluster`` (3 nodes, the demo kappa-test@1..3 behind HAProxy on port 8000),
while a client on the first node asks the demo through its HAProxy every 50 ms (15 s timeout,
``curl`` in a loop on the node, each answer logged with its time), this runs, on the last node:

1. ``playbooks/drain_node.yml`` (its units move; kappa-test has nowhere to go and waits);
2. the same with ``fleet_drained=false`` (taken back: the waiting instance runs there again);
3. ``playbooks/remove_node.yml`` with ``etcd_remove_force=true`` (3 -> 2 members);
4. ``playbooks/site.yml`` (the node added again: 2 -> 3 members).

Then (``--grow N``, default 2; 0 leaves it out) it grows the cluster by N nodes and back:
``playbooks/lab.yml`` makes the new node containers (not timed), one ``site.yml`` adds them all
(3 -> 3+N members, one at a time), and ``remove_node.yml`` removes them again, newest first. The
daemons and etcd of the nodes that were there before must not restart while nodes are added: their
PIDs are compared.

For each it prints the playbook's wall time, the requests made meanwhile and how many failed
(no 2xx within 15 s), and for the drain the gap of each unit it moved (as the playbook reports it).

    .venv/bin/python bench/node_lifecycle.py --prefix etcdfleet-core [--grow N]
"""

import os
import re
import subprocess
import sys
import time

from fleet_lab import ROOT, docker, nodes, parser

CLIENT = r'''
rm -f /tmp/bench-client.stop /tmp/bench-client.log
while [ ! -e /tmp/bench-client.stop ]; do
  t=$(date +%s.%N)
  if curl -fsS -o /dev/null --max-time 15 http://127.0.0.1:8000/; then r=ok; else r=failed; fi
  echo "$t $r"
  sleep 0.05
done > /tmp/bench-client.log
'''


def playbook(inventory, name, *extra):
    env = dict(os.environ, ANSIBLE_NOCOLOR='1')
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
            os.path.join(ROOT, 'playbooks', name)] + list(extra)
    start = time.time()
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    end = time.time()
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        raise SystemExit('%s failed (exit %d)' % (name, proc.returncode))
    return start, end, proc.stdout


# The services whose main PID must stay the same on the nodes already there while nodes are added.
SERVICES = ('etcd', 'fleet', 'etcdfleet-registrator', 'etcdfleet-flannel', 'docker-discover', 'haproxy')


def main_pids(names):
    out = {}
    for name in names:
        text = docker('exec', name, 'systemctl', 'show', '-p', 'MainPID', '--value',
                      *['%s.service' % s for s in SERVICES])
        out.update(((name, s), pid) for s, pid in zip(SERVICES, text.split()))
    return out


def answers(node):
    text = docker('exec', node, 'cat', '/tmp/bench-client.log')
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out.append((float(parts[0]), parts[1]))
    return out


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--inventory', default=os.path.join(ROOT, '.lab', 'inventory.yml'))
    p.add_argument('--grow', type=int, default=2, metavar='N',
                   help='then add N nodes in one site.yml run and remove them again (0: not)')
    args = p.parse_args()
    names = [n for n in nodes(args.prefix) if docker('inspect', '-f', '{{.State.Running}}', n) == 'true']
    client, victim = names[0], names[-1]
    host = re.sub(r'^.*?-(core-\d+)$', r'\1', victim)
    docker('exec', '-d', client, 'bash', '-c', CLIENT)
    time.sleep(1)
    steps = [
        ('drain', 'drain_node.yml', ['-e', 'node=' + host]),
        ('take back', 'drain_node.yml', ['-e', 'node=' + host, '-e', 'fleet_drained=false']),
        ('remove (3 -> 2 members)', 'remove_node.yml', ['-e', 'node=' + host, '-e', 'etcd_remove_force=true']),
        ('add again (site.yml, 2 -> 3 members)', 'site.yml', []),
    ]
    results = []
    gaps = []
    restarted = None
    try:
        for title, name, extra in steps:
            start, end, output = playbook(args.inventory, name, *extra)
            results.append((title, start, end))
            gaps.extend(re.findall(r'(\S+\.service) moved to (\w+), down ([0-9.]+) s', output))
            time.sleep(2)
        if args.grow:
            count = len(names) + args.grow
            playbook(args.inventory, 'lab.yml', '-e', 'lab_node_count=%d' % count)
            playbook(args.inventory, 'lab_ssh.yml')
            before = main_pids(names)
            added = ['core-%02d' % i for i in range(len(names) + 1, count + 1)]
            title = 'add %s (site.yml, %d -> %d)' % (', '.join(added), len(names), count)
            results.append((title,) + playbook(args.inventory, 'site.yml')[:2])
            after = main_pids(names)
            restarted = sorted('%s %s' % key for key in before if before[key] != after[key])
            for i, node in enumerate(reversed(added)):
                title = 'remove %s (%d -> %d)' % (node, count - i, count - i - 1)
                results.append((title,) + playbook(args.inventory, 'remove_node.yml', '-e', 'node=' + node)[:2])
            playbook(args.inventory, 'lab.yml', '-e', 'lab_node_count=%d' % len(names))
            for host in added:
                container = re.sub(r'core-\d+$', host, names[0])
                docker('rm', '-f', container, check=False)
                docker('volume', 'rm', container + '-docker', check=False)
    finally:
        docker('exec', client, 'touch', '/tmp/bench-client.stop', check=False)
        time.sleep(1)
    log = answers(client)
    print('client on %s through its HAProxy, operations on %s (%s)' % (client, victim, host))
    print('%-40s %8s %9s %7s' % ('operation', 'seconds', 'requests', 'failed'))
    for title, start, end in results:
        during = [r for t, r in log if start <= t <= end]
        print('%-40s %8.1f %9d %7d' % (title, end - start, len(during), during.count('failed')))
    print('%-40s %8s %9d %7d' % ('whole run', '', len(log), sum(1 for entry in log if entry[1] == 'failed')))
    if restarted is not None:
        print('restarted on the nodes already there while nodes were added: %s' % (', '.join(restarted) or 'none'))
    for unit, machine, gap in gaps:
        print('moved by the drain: %s to %s, down %s s' % (unit, machine, gap))


if __name__ == '__main__':
    main()
