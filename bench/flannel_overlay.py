# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay network on the lab, as a user sees it on the nodes:

1. lease written -> route present on every other node: a lease is written on the first node with
   ``etcdctl set`` (timed from just before the command), and the other nodes' ``ip -ts monitor
   route`` print when the kernel got the route; then the lease is deleted and the route's removal
   timed the same way. p50/p99 over ``--leases`` rounds.
2. throughput between containers on two nodes over the overlay, against the same transfer between
   the two nodes themselves (one TCP stream of ``--megabytes``, Python sockets run on the nodes,
   inside the containers' network namespaces for the overlay), ``--repeat`` times each, alternated;
3. the flannel daemon's resident memory on every node.

    .venv/bin/python bench/flannel_overlay.py --prefix etcdfleet-core
"""

import datetime
import json
import subprocess
import time

import fleet_lab

PREFIX = '/coreos.com/network'
FAKE = '{"PublicIP":"172.31.8.250","BackendType":"vxlan","BackendData":{"VtepMAC":"56:83:9e:b8:2d:a9"}}'
SINK = r'''
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5201)); s.listen(1); c, _ = s.accept()
total = 0; start = None
while True:
    data = c.recv(1 << 20)
    if start is None: start = time.monotonic()
    if not data: break
    total += len(data)
print("%.1f" % (total * 8 / (time.monotonic() - start) / 1e6))
'''
SOURCE = r'''
import socket, sys, time
target, megabytes = sys.argv[1], int(sys.argv[2])
for _ in range(100):
    try:
        s = socket.create_connection((target, 5201), timeout=5); break
    except OSError:
        time.sleep(0.1)
block = b"x" * (1 << 20)
for _ in range(megabytes): s.sendall(block)
s.close()
'''


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(fraction * (len(values) - 1))))]


def monitor_times(name, needle):
    """Epoch seconds of the monitor lines on ``name`` that contain ``needle``, in order."""
    text = fleet_lab.docker('exec', name, 'cat', '/tmp/bench-route-monitor.log', check=False)
    found = []
    for line in text.splitlines():
        if needle in line and line.startswith('['):
            stamp = line[1:line.index(']')]
            moment = datetime.datetime.fromisoformat(stamp)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            found.append((moment.timestamp(), line))
    return found


def lease_to_route(names, rounds):
    writer, others = names[0], names[1:]
    for name in others:
        fleet_lab.docker('exec', name, 'sh', '-c', 'pkill -f "[i]p -ts monitor route"; rm -f /tmp/bench-route-monitor.log')
        fleet_lab.docker('exec', '-d', name, 'sh', '-c', 'TZ=UTC ip -ts monitor route > /tmp/bench-route-monitor.log')
    time.sleep(0.5)
    added, removed = [], []
    key = '%s/subnets/10.1.250.0-24' % PREFIX
    for dummy in range(rounds):
        for kind, command, bucket in (('add', ['etcdctl', 'set', key, FAKE], added),
                                      ('delete', ['etcdctl', 'rm', key], removed)):
            start = float(fleet_lab.docker('exec', writer, 'bash', '-lc',
                                           'date +%s.%N; ' + ' '.join("'%s'" % part for part in command)
                                           + ' >/dev/null').split()[0])
            wanted = 'Deleted 10.1.250.0/24' if kind == 'delete' else '10.1.250.0/24 via'
            for name in others:
                seen = fleet_lab.wait(lambda name=name: [t for t, line in monitor_times(name, wanted) if t >= start],
                                      10, interval=0.05)
                if not seen:
                    raise SystemExit('%s: no route %s within 10 s' % (name, kind))
                bucket.append(seen[0] - start)
    for name in others:
        fleet_lab.docker('exec', name, 'pkill', '-f', '[i]p -ts monitor route', check=False)
    for title, values in (('lease written -> route present', added), ('lease deleted -> route gone', removed)):
        print('%s on %d other node(s), %d rounds: p50 %.0f ms, p99 %.0f ms, max %.0f ms'
              % (title, len(others), rounds, percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000,
                 max(values) * 1000))


def container(name):
    fleet_lab.docker('exec', name, 'docker', 'rm', '-f', 'bench-overlay', check=False)
    fleet_lab.docker('exec', name, 'docker', 'run', '-d', '--name', 'bench-overlay', 'etcdfleet/busybox:latest',
                     'sleep', '600')
    found = fleet_lab.docker('exec', name, 'docker', 'inspect', '-f', '{{.NetworkSettings.IPAddress}} {{.State.Pid}}',
                             'bench-overlay').split()
    return found[0], found[1]


def transfer(receiver, sender, target, megabytes, receiver_pid=None, sender_pid=None):
    def enter(pid):
        return ['nsenter', '-t', pid, '-n'] if pid else []
    sink = subprocess.Popen(['docker', 'exec', receiver] + enter(receiver_pid) + ['python3', '-c', SINK],
                            stdout=subprocess.PIPE, universal_newlines=True)
    fleet_lab.docker('exec', sender, *(enter(sender_pid) + ['python3', '-c', SOURCE, target, str(megabytes)]))
    out = sink.communicate(timeout=300)[0]
    return float(out.strip())


def throughput(names, megabytes, repeat):
    a, b = names[0], names[1]
    a_ip, a_pid = container(a)
    b_ip, b_pid = container(b)
    direct, overlay = [], []
    try:
        for dummy in range(repeat):  # alternated, so that a busy moment of the machine hits both alike
            direct.append(transfer(b, a, fleet_lab.node_ip(b), megabytes))
            overlay.append(transfer(b, a, b_ip, megabytes, receiver_pid=b_pid, sender_pid=a_pid))
    finally:
        for name in (a, b):
            fleet_lab.docker('exec', name, 'docker', 'rm', '-f', 'bench-overlay', check=False)
    ratios = sorted(o / d for o, d in zip(overlay, direct))
    print('one TCP stream of %d MB, %s -> %s, %d runs each, alternated: between the nodes median %.0f Mbit/s '
          '(%.0f..%.0f), between containers over the overlay (%s -> %s) median %.0f Mbit/s (%.0f..%.0f); '
          'overlay/nodes per pair of runs: median %.2f (%.2f..%.2f)'
          % (megabytes, a, b, repeat, fleet_lab.median(direct), min(direct), max(direct), a_ip, b_ip,
             fleet_lab.median(overlay), min(overlay), max(overlay), fleet_lab.median(ratios), ratios[0], ratios[-1]))


def memory(names):
    for name in names:
        rss = fleet_lab.service_rss(name, 'etcdfleet-flannel.service')
        if rss is None:
            print('%s: etcdfleet-flannel.service not running' % name)
            continue
        peers = fleet_lab.docker('exec', name, 'ip', '-j', 'route', 'show', 'proto', '125')
        print('%s: flannel RSS %.1f MB with %d peer route(s)' % (name, rss, len(json.loads(peers))))


def main():
    opts = fleet_lab.parser(__doc__)
    opts.add_argument('--leases', type=int, default=30, help='rounds of lease written/deleted')
    opts.add_argument('--megabytes', type=int, default=1000, help='size of each transfer')
    opts.add_argument('--repeat', type=int, default=7, help='transfers of each kind')
    opts = opts.parse_args()
    names = fleet_lab.nodes(opts.prefix)
    if len(names) < 2:
        raise SystemExit('the overlay benchmark needs two nodes')
    print('nodes: %s; clock skew between them: none (one kernel)' % ', '.join(names))
    lease_to_route(names, opts.leases)
    throughput(names, opts.megabytes, opts.repeat)
    memory(names)


if __name__ == '__main__':
    main()
