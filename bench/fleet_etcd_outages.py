# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd disruptions on the lab with N launched units: how many units moved or restarted.

N instances of a ``sleep infinity`` template are launched; then, one after the other:

- ``leader``:  the etcd leader's service restarted (``systemctl restart etcd``);
- ``rolling``: every member restarted in turn, each healthy again before the next;
- ``pause``:   the leader's etcd process stopped with SIGSTOP for 10 s (the machine's other daemons
  run on), then SIGCONT;
- ``down10``, ``down60``: every member stopped, 10 s / 60 s, then all started again.

After each fault, once every member is healthy, the script waits ``--settle`` seconds (more than
the engine's outage grace) and compares what a user sees before and after: the machine each unit
is placed on (``fleetctl list-units``) and, on every node, systemd's InvocationID of each unit
(``systemctl show``; it changes when a unit is started again). Printed per fault: units moved,
restarted, not active, and seconds until etcd was healthy. Expected: 0 moved, 0 restarted.
A machine failure (docker kill of a node) is measured by fleet_failover.py.
"""

import time

import fleet_lab
from fleet_lab import docker, wait

TEMPLATE = 'bench-outage@.service'
CONTENTS = '[Unit]\nDescription=outage bench %i\n\n[Service]\nExecStart=/bin/sleep infinity\n'
FAULTS = ('leader', 'rolling', 'pause', 'down10', 'down60')


def placements(store, units):
    snap = store.snapshot()
    return dict((name, snap.jobs[name].target if name in snap.jobs else None) for name in units)


def invocations(names):
    """``{unit: (node, InvocationID, ActiveState)}`` of the bench units systemd holds, on every node."""
    found = {}
    for node in names:
        out = docker('exec', node, 'systemctl', 'show', '--no-pager', '-p', 'Id', '-p', 'InvocationID',
                     '-p', 'ActiveState', 'bench-outage@*', check=False)
        for block in out.split('\n\n'):
            props = dict(line.split('=', 1) for line in block.splitlines() if '=' in line)
            if props.get('Id', '').startswith('bench-outage@') and props.get('ActiveState') == 'active':
                found[props['Id']] = (node, props.get('InvocationID'), props['ActiveState'])
    return found


def picture(store, names, units):
    return placements(store, units), invocations(names)


def leader(store, names):
    """The node container whose etcd member leads (None while there is no leader)."""
    by_ip = dict((fleet_lab.node_ip(n), n) for n in names)
    try:
        members = store.client.cluster_info()['members']
    except Exception:  # pylint: disable=broad-except
        return None
    for member in members:
        if member.get('is_leader'):
            for url in member.get('client_urls') or []:
                host = url.split('://', 1)[-1].rsplit(':', 1)[0]
                if host in by_ip:
                    return by_ip[host]
    return None


def healthy(store):
    """Every member healthy and a leader elected."""
    try:
        return store.client.cluster_info()['healthy']
    except Exception:  # pylint: disable=broad-except
        return False


def etcd(node, action):
    docker('exec', node, 'systemctl', action, 'etcd.service')


def apply_fault(fault, store, names):
    """Cause ``fault``; returns when it has been undone (not yet healthy necessarily)."""
    if fault == 'leader':
        etcd(leader(store, names) or names[0], 'restart')
    elif fault == 'rolling':
        for node in names:
            etcd(node, 'restart')
            if not wait(lambda: healthy(store), 60, 0.5):
                raise SystemExit('etcd not healthy after restarting %s' % node)
    elif fault == 'pause':
        node = leader(store, names) or names[0]
        docker('exec', node, 'pkill', '-STOP', '-x', 'etcd')
        time.sleep(10)
        docker('exec', node, 'pkill', '-CONT', '-x', 'etcd')
    elif fault.startswith('down'):
        for node in names:
            etcd(node, 'stop')
        time.sleep(int(fault[len('down'):]))
        for node in names:
            docker('exec', '-d', node, 'systemctl', 'start', 'etcd.service')
    else:
        raise SystemExit('unknown fault %s (one of %s)' % (fault, ', '.join(FAULTS)))


def compare(before, after, units):
    (placed, running), (placed_after, running_after) = before, after
    moved = [u for u in units if placed_after.get(u) != placed.get(u)]
    restarted = [u for u in units if u in running and u in running_after and running_after[u] != running[u]]
    inactive = [u for u in units if u not in running_after]
    return moved, restarted, inactive


def main():
    args = fleet_lab.parser(__doc__)
    args.add_argument('--units', type=int, default=300)
    args.add_argument('--faults', default=','.join(FAULTS), help='comma-separated, of: ' + ', '.join(FAULTS))
    args.add_argument('--settle', type=float, default=45,
                      help='seconds to wait after etcd is healthy again (more than the outage grace)')
    args.add_argument('--keep', action='store_true', help='leave the units in place')
    opts = args.parse_args()
    lab = fleet_lab.Lab(opts)
    names, store = lab.names, lab.store
    units = ['bench-outage@%d.service' % i for i in range(1, opts.units + 1)]
    if store.job(TEMPLATE) is None:
        store.create_unit(TEMPLATE, CONTENTS)
    store.create_units([(name, CONTENTS) for name in units if store.job(name) is None], target_state='launched')
    if not wait(lambda: len(invocations(names)) == len(units), 600, 2):
        raise SystemExit('the %d units are not all active' % len(units))
    print('%d units active on %d machines' % (len(units), len(names)), flush=True)
    totals = [0, 0, 0]
    for fault in opts.faults.split(','):
        if not wait(lambda: healthy(store), 120, 0.5):
            raise SystemExit('etcd is not healthy before %s' % fault)
        before = picture(store, names, units)
        start = time.monotonic()
        apply_fault(fault, store, names)
        if not wait(lambda: healthy(store), 180, 0.5):
            raise SystemExit('etcd is not healthy after %s' % fault)
        recovered = time.monotonic() - start
        time.sleep(opts.settle)
        after = picture(store, names, units)
        moved, restarted, inactive = compare(before, after, units)
        for i, count in enumerate((moved, restarted, inactive)):
            totals[i] += len(count)
        print('%-8s etcd healthy after %5.1f s; %d units: %d moved, %d restarted, %d not active%s'
              % (fault, recovered, len(units), len(moved), len(restarted), len(inactive),
                 (' (e.g. %s)' % ', '.join((moved + restarted + inactive)[:3])) if moved or restarted or inactive
                 else ''), flush=True)
    print('all faults: %d moved, %d restarted, %d not active' % tuple(totals))
    if not opts.keep:
        for name in units + [TEMPLATE]:
            store.destroy_unit(name)


if __name__ == '__main__':
    main()
