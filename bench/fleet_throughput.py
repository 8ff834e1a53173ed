# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scheduling throughput on the lab: N instances of a ``sleep infinity`` template submitted in the
launched state (as ``fleetctl start --no-block``) -> all N launched (systemd active on their
machines, job heartbeats current). Prints the submit time and the time to all launched.
"""

import time

import fleet_lab

TEMPLATE = 'bench-sleep@.service'
CONTENTS = '[Unit]\nDescription=bench %i\n\n[Service]\nExecStart=/bin/sleep infinity\n'


def main():
    args = fleet_lab.parser(__doc__)
    args.add_argument('--units', type=int, default=300)
    args.add_argument('--timeout', type=float, default=300)
    args.add_argument('--keep', action='store_true', help='leave the units in place')
    opts = args.parse_args()
    names = fleet_lab.nodes(opts.prefix)
    store = fleet_lab.store(names, opts.api_version)
    units = ['bench-sleep@%d.service' % i for i in range(1, opts.units + 1)]
    if store.job(TEMPLATE) is None:
        store.create_unit(TEMPLATE, CONTENTS)
    start = time.monotonic()
    for name in units:
        store.create_unit(name, CONTENTS, target_state='launched')
    submitted = time.monotonic() - start

    def done(snap):
        return sum(1 for n in units if snap.current_state(n) == 'launched'
                   and snap.states.get(n, {}).get(snap.jobs[n].target) is not None
                   and snap.states[n][snap.jobs[n].target].active_state == 'active')
    count = 0
    deadline = start + opts.timeout
    while time.monotonic() < deadline:
        count = done(store.snapshot())
        if count == len(units):
            break
        time.sleep(0.1)
    total = time.monotonic() - start
    per_machine = {}
    snap = store.snapshot()
    for name in units:
        target = snap.jobs[name].target
        per_machine[target[:8] if target else '-'] = per_machine.get(target[:8] if target else '-', 0) + 1
    print('%d units submitted in %.2f s; %d/%d launched after %.2f s; per machine %s'
          % (len(units), submitted, count, len(units), total, per_machine))
    if not opts.keep:
        cleanup = time.monotonic()
        for name in units + [TEMPLATE]:
            store.destroy_unit(name)
        print('destroyed in %.2f s' % (time.monotonic() - cleanup))


if __name__ == '__main__':
    main()
