# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ambassador failover on the lab: a provider (busybox httpd, fleet unit) announced by its sidekick,
a consumer's ambassador (fleet unit, Conflicts= the provider) and a request loop on the consumer's
machine through the ambassador's local port.

1. steady: requests while nothing moves, for ``--steady`` seconds; prints how many failed
   (target: zero);
2. ``--kills`` times: ``docker kill`` of the provider's machine, then the time until the consumer's
   first successful request answered from another machine through the same port; the killed
   machine is started again and the next round waits until every unit runs.

Needs the lab nodes with the node runtime, fleet and the ambassador role (HAProxy and the template),
for example the nodes of ``molecule converge -s default``:
``.venv/bin/python bench/ambassador_failover.py --prefix amb``.
"""

import subprocess
import threading
import time

import fleet_lab
from fleet_lab import wait

PROVIDER = 'bench-echo.service'
ANNOUNCER = 'bench-echo-announce.service'
AMBASSADOR = 'bench-echo-ambassador.service'
PORT = 7100
IMAGE = 'etcdfleet/busybox:latest'

UNITS = {
    PROVIDER: """[Unit]
After=docker.service
Requires=docker.service

[Service]
ExecStartPre=-/usr/bin/docker rm -f bench-echo
ExecStart=/usr/bin/docker run --rm --name bench-echo --hostname %%H -p 8000 %s \
    sh -c "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8000 -h /www"
ExecStop=/usr/bin/docker stop -t 2 bench-echo
Restart=always
RestartSec=1
""" % IMAGE,
    ANNOUNCER: """[Unit]
BindsTo=%s
After=%s

[Service]
EnvironmentFile=/etc/etcdfleet/etcd.env
ExecStart=/usr/bin/python3 -m etcdfleet_agents.announce --service bench-echo --container bench-echo --port 8000 --ttl 10
Restart=always
RestartSec=1

[X-Fleet]
MachineOf=%s
""" % (PROVIDER, PROVIDER, PROVIDER),
    AMBASSADOR: """[Service]
EnvironmentFile=/etc/etcdfleet/etcd.env
ExecStart=/usr/bin/python3 -m etcdfleet_agents.ambassador --service bench-echo --listen 127.0.0.1:%d --mode http --check-inter 1s
Restart=always
RestartSec=2

[X-Fleet]
Conflicts=%s
""" % (PORT, PROVIDER),
}

# One line per request on the consumer's machine: "<time> <answer or FAIL>".
LOOP = ("while :; do out=$(curl -s --fail --max-time 1 http://127.0.0.1:%d/) || out=FAIL; "
        "echo \"$(date +%%s.%%N) $out\"; sleep 0.02; done" % PORT)


def placements(store):
    snap = store.snapshot()
    found = {}
    for unit in UNITS:
        for mid, record in snap.states.get(unit, {}).items():
            job = snap.jobs.get(unit)
            if record.active_state == 'active' and job is not None and job.target == mid:
                found[unit] = mid
    return found if len(found) == len(UNITS) else None


class Requests(object):
    """The request loop on one node, read line by line."""

    def __init__(self, node):
        self.process = subprocess.Popen(['docker', 'exec', node, 'bash', '-c', LOOP], stdout=subprocess.PIPE,
                                        universal_newlines=True)
        self.lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.process.stdout:
            stamp, dummy, answer = line.strip().partition(' ')
            try:
                self.lines.append((float(stamp), answer))
            except ValueError:
                continue

    def since(self, start):
        return [(t, a) for t, a in list(self.lines) if t >= start]

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def main():
    args = fleet_lab.parser(__doc__)
    args.add_argument('--kills', type=int, default=3)
    args.add_argument('--steady', type=float, default=20.0, help='seconds of requests while nothing moves')
    args.add_argument('--timeout', type=float, default=90.0)
    opts = args.parse_args()
    lab = fleet_lab.Lab(opts)
    names, ids, store = lab.names, lab.ids, lab.store
    for unit, contents in UNITS.items():
        if store.job(unit) is None:
            store.create_unit(unit, contents, target_state='launched')
    where = wait(lambda: placements(store), opts.timeout, 0.2)
    if not where:
        raise SystemExit('the bench units do not all run')
    consumer = ids[where[AMBASSADOR]]
    requests = Requests(consumer)
    try:
        if not wait(lambda: any(a != 'FAIL' for dummy, a in requests.lines), 30, 0.1):
            raise SystemExit('the ambassador on %s does not answer' % consumer)
        start = time.time()
        time.sleep(opts.steady)
        steady = requests.since(start)
        failed = sum(1 for dummy, a in steady if a == 'FAIL')
        print('steady: %d requests in %.0f s through the ambassador on %s, %d failed'
              % (len(steady), opts.steady, consumer, failed), flush=True)
        times = []
        for round_no in range(1, opts.kills + 1):
            where = wait(lambda: placements(store), opts.timeout, 0.2)
            if not where or len(store.snapshot().machines) != len(names):
                raise SystemExit('round %d: not every machine and unit is back' % round_no)
            victim = ids[where[PROVIDER]]
            before = [a for dummy, a in requests.lines if a != 'FAIL'][-1]
            kill_time = time.time()
            fleet_lab.docker('kill', victim)
            moved = wait(lambda: [(t, a) for t, a in requests.since(kill_time) if a not in ('FAIL', before)],
                         opts.timeout, 0.05)
            if not moved:
                raise SystemExit('round %d: no answer from another machine within %ss' % (round_no, opts.timeout))
            elapsed = moved[0][0] - kill_time
            lost = sum(1 for t, a in requests.since(kill_time) if a == 'FAIL' and t < moved[0][0])
            times.append(elapsed)
            print('kill %d: provider %s -> %s, first answer through the ambassador %.2f s after the kill '
                  '(%d requests failed meanwhile)' % (round_no, victim, moved[0][1], elapsed, lost), flush=True)
            fleet_lab.docker('start', victim)
            lab.all_registered()
        if times:
            print('failover median %.2f s over %d kills (min %.2f, max %.2f)'
                  % (fleet_lab.median(times), len(times), min(times), max(times)))
    finally:
        requests.stop()
        for unit in UNITS:
            store.destroy_unit(unit)


if __name__ == '__main__':
    main()
