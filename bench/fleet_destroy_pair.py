# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A provider and its BindsTo= sidekick destroyed together on the lab, as a user does it:
``fleetctl destroy PROVIDER SIDEKICK`` on a node -> the provider's container stopped and both units
gone from systemd on their machine (``docker ps`` and ``systemctl`` there). Every other round first
kills the pair's machine (``docker kill`` of the node) so that the pair is destroyed right after it
failed over, where the race was seen. Prints each time, the median, and how many stop jobs timed out.
"""

import time

import fleet_lab
from fleet_lab import wait

PROVIDER = 'bench-pair.service'
SIDEKICK = 'bench-pair-sidekick.service'
CONTAINER = 'bench-pair'
IMAGE = 'etcdfleet/busybox:latest'
UNITS = {
    PROVIDER: """[Unit]
After=docker.service
Requires=docker.service

[Service]
ExecStartPre=-/usr/bin/docker rm -f %s
ExecStart=/usr/bin/docker run --init --sig-proxy=false --name=%s %s sleep 3600
ExecStop=/usr/bin/docker stop %s
""" % (CONTAINER, CONTAINER, IMAGE, CONTAINER),
    SIDEKICK: """[Unit]
BindsTo=%s
After=%s

[Service]
ExecStart=/bin/sh -c 'trap "sleep 2; exit 0" TERM; while :; do sleep 1; done'

[X-Fleet]
MachineOf=%s
""" % (PROVIDER, PROVIDER, PROVIDER),
}


def placed(store):
    """The machine where both units are active, else None."""
    snap = store.snapshot()
    where = set()
    for unit in UNITS:
        job = snap.jobs.get(unit)
        record = snap.states.get(unit, {}).get(job.target) if job is not None and job.target else None
        if record is None or record.active_state != 'active':
            return None
        where.add(job.target)
    return where.pop() if len(where) == 1 else None


def placed_elsewhere(store, machine):
    where = placed(store)
    return where if where and where != machine else None


def container_running(node):
    return fleet_lab.docker('exec', node, 'docker', 'ps', '--filter', 'name=^%s$' % CONTAINER,
                            '--filter', 'status=running', '--format', '{{.Names}}', check=False) == CONTAINER


def units_gone(node):
    states = fleet_lab.docker('exec', node, 'systemctl', 'show', '-p', 'ActiveState', PROVIDER, SIDEKICK, check=False)
    return 'ActiveState=active' not in states and 'ActiveState=deactivating' not in states


def main():
    args = fleet_lab.parser(__doc__)
    args.add_argument('--rounds', type=int, default=6)
    args.add_argument('--timeout', type=float, default=120)
    opts = args.parse_args()
    lab = fleet_lab.Lab(opts)
    names, ids, store = lab.names, lab.ids, lab.store
    times, timed_out = [], 0
    for round_no in range(1, opts.rounds + 1):
        if not lab.all_registered():
            raise SystemExit('not every machine is registered')
        for unit, contents in UNITS.items():
            store.create_unit(unit, contents, target_state='launched')
        where = wait(lambda: placed(store), opts.timeout, 0.2)
        if not where:
            raise SystemExit('round %d: the pair does not run' % round_no)
        moved = ''
        if round_no % 2 == 0:
            victim = ids[where]
            victim_id = where
            fleet_lab.docker('kill', victim)
            where = wait(lambda: placed_elsewhere(store, victim_id), opts.timeout, 0.2)
            fleet_lab.docker('start', victim)
            if not where:
                raise SystemExit('round %d: the pair did not fail over' % round_no)
            moved = ' (after failing over from %s)' % victim
        node = ids[where]
        wait(lambda: container_running(node), 30, 0.2)
        client = [n for n in names if n != node][0]
        start = time.monotonic()
        fleet_lab.docker('exec', client, 'fleetctl', 'destroy', PROVIDER, SIDEKICK)
        done = wait(lambda: not container_running(node) and units_gone(node), opts.timeout, 0.1)
        elapsed = time.monotonic() - start
        journal = fleet_lab.docker('exec', node, 'journalctl', '-u', PROVIDER, '--since=-%ds' % int(elapsed + 30),
                                   '--no-pager', '-o', 'cat', check=False)
        if 'timed out' in journal:
            timed_out += 1
        fleet_lab.docker('exec', node, 'docker', 'rm', '-f', CONTAINER, check=False)
        if not done:
            raise SystemExit('round %d: the pair on %s was not stopped within %ss' % (round_no, node, opts.timeout))
        times.append(elapsed)
        print('round %d: destroyed on %s%s, container stopped and units gone in %.2f s'
              % (round_no, node, moved, elapsed), flush=True)
    for node in names:
        fleet_lab.docker('exec', node, 'docker', 'rm', '-f', CONTAINER, check=False)
    print('destroy of a provider and its sidekick: median %.2f s over %d rounds (min %.2f, max %.2f); '
          '%d stop job(s) timed out' % (fleet_lab.median(times), len(times), min(times), max(times), timed_out))


if __name__ == '__main__':
    main()
