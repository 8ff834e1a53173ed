# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resident memory of the fleet service (agent + engine candidate) on every lab node, in MB,
with the units it runs at the time (run after fleet_throughput.py --keep for a loaded figure).
"""

import fleet_lab


def main():
    opts = fleet_lab.parser(__doc__).parse_args()
    for name in fleet_lab.nodes(opts.prefix):
        rss = fleet_lab.service_rss(name, 'fleet.service')
        if rss is None:
            print('%s: fleet.service not running' % name)
            continue
        units = fleet_lab.docker('exec', name, 'sh', '-c', 'ls /run/fleet/units 2>/dev/null | wc -l')
        print('%s: fleet RSS %.1f MB with %s units' % (name, rss, units))


if __name__ == '__main__':
    main()
