# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Failover time on the lab: ``docker kill`` of the machine running a unit -> the unit active on
another machine (as published in ``states/``), over several kills; prints each time and the median.

The killed node is started again after each round and the next round waits until it is back.
"""

import time

import fleet_lab
from fleet_lab import wait

UNIT = 'bench-failover.service'
CONTENTS = '[Service]\nExecStart=/bin/sleep infinity\n'


def active_elsewhere(snap, victim):
    for mid, record in snap.states.get(UNIT, {}).items():
        if mid != victim and record.active_state == 'active' and snap.jobs.get(UNIT) is not None \
                and snap.jobs[UNIT].target == mid:
            return mid
    return None


def launched_on(snap):
    if snap.current_state(UNIT) == 'launched':
        return snap.jobs[UNIT].target
    return None


def main():
    args = fleet_lab.parser(__doc__)
    args.add_argument('--kills', type=int, default=5)
    args.add_argument('--timeout', type=float, default=60)
    opts = args.parse_args()
    lab = fleet_lab.Lab(opts)
    ids, store = lab.ids, lab.store
    if store.job(UNIT) is None:
        store.create_unit(UNIT, CONTENTS, target_state='launched')
    times = []
    for round_no in range(1, opts.kills + 1):
        if not lab.all_registered():
            raise SystemExit('not every machine is registered')
        victim = wait(lambda: launched_on(store.snapshot()), opts.timeout)
        if not victim:
            raise SystemExit('%s is not launched' % UNIT)
        container = ids[victim]
        start = time.monotonic()
        fleet_lab.docker('kill', container)
        moved = wait(lambda: active_elsewhere(store.snapshot(), victim), opts.timeout)
        elapsed = time.monotonic() - start
        if not moved:
            raise SystemExit('round %d: %s did not run elsewhere within %ss' % (round_no, UNIT, opts.timeout))
        times.append(elapsed)
        print('kill %d: %s -> %s in %.2f s' % (round_no, container, ids.get(moved, moved[:8]), elapsed), flush=True)
        fleet_lab.docker('start', container)
    print('failover median %.2f s over %d kills (min %.2f, max %.2f)'
          % (fleet_lab.median(times), len(times), min(times), max(times)))
    lab.all_registered()
    store.destroy_unit(UNIT)


if __name__ == '__main__':
    main()
