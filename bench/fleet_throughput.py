# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scheduling throughput on the lab: N instances of a ``sleep infinity`` template submitted in the
launched state (as ``fleetctl start --no-block``) -> all N launched (systemd active on their
machines, job heartbeats current). Prints the submit time and the time to all launched, and when
each phase was complete for every unit: submitted, scheduled (``target`` written by the engine),
reported active (``states/`` written by the agents) and launched (``job-state`` heartbeat too).
"""

import time

import fleet_lab

TEMPLATE = 'bench-sleep@.service'
CONTENTS = '[Unit]\nDescription=bench %i\n\n[Service]\nExecStart=/bin/sleep infinity\n'


def counts(snap, units):
    """``(scheduled, reported active, launched)`` among ``units``."""
    scheduled = active = launched = 0
    for name in units:
        job = snap.jobs.get(name)
        if job is None or not job.target:
            continue
        scheduled += 1
        record = snap.states.get(name, {}).get(job.target)
        if record is None or record.active_state != 'active':
            continue
        active += 1
        if snap.current_state(name) == 'launched':
            launched += 1
    return scheduled, active, launched


def seconds(value):
    return 'never' if value is None else '%.2f s' % value


def main():
    args = fleet_lab.parser(__doc__)
    args.add_argument('--units', type=int, default=300)
    args.add_argument('--timeout', type=float, default=300)
    args.add_argument('--keep', action='store_true', help='leave the units in place')
    opts = args.parse_args()
    lab = fleet_lab.Lab(opts)
    store = lab.store
    units = ['bench-sleep@%d.service' % i for i in range(1, opts.units + 1)]
    if store.job(TEMPLATE) is None:
        store.create_unit(TEMPLATE, CONTENTS)
    start = time.monotonic()
    store.create_units([(name, CONTENTS) for name in units], target_state='launched')
    submitted = time.monotonic() - start

    phases = [None, None, None]
    count = (0, 0, 0)
    deadline = start + opts.timeout
    while time.monotonic() < deadline:
        count = counts(store.snapshot(), units)
        now = time.monotonic() - start
        for i, value in enumerate(count):
            if value == len(units) and phases[i] is None:
                phases[i] = now
        if count[2] == len(units):
            break
        time.sleep(0.1)
    total = time.monotonic() - start
    per_machine = {}
    snap = store.snapshot()
    for name in units:
        target = snap.jobs[name].target
        per_machine[target[:8] if target else '-'] = per_machine.get(target[:8] if target else '-', 0) + 1
    print('%d units submitted in %.2f s; %d/%d launched after %.2f s; per machine %s'
          % (len(units), submitted, count[2], len(units), total, per_machine))
    print('all submitted %.2f s, all scheduled %s, all reported active %s, all launched %s'
          % ((submitted,) + tuple(seconds(p) for p in phases)))
    if not opts.keep:
        cleanup = time.monotonic()
        for name in units + [TEMPLATE]:
            store.destroy_unit(name)
        print('destroyed in %.2f s' % (time.monotonic() - cleanup))


if __name__ == '__main__':
    main()
