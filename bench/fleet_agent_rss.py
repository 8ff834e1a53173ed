# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resident memory of the fleet service (agent + engine candidate) on every lab node, in MB,
with the units it runs at the time (run after fleet_throughput.py --keep for a loaded figure).
"""

import fleet_lab


def main():
    opts = fleet_lab.parser(__doc__).parse_args()
    for name in fleet_lab.nodes(opts.prefix):
        pid = fleet_lab.docker('exec', name, 'systemctl', 'show', '-p', 'MainPID', '--value', 'fleet.service')
        if not pid or pid == '0':
            print('%s: fleet.service not running' % name)
            continue
        status = fleet_lab.docker('exec', name, 'cat', '/proc/%s/status' % pid)
        rss = [line.split()[1] for line in status.splitlines() if line.startswith('VmRSS:')]
        units = fleet_lab.docker('exec', name, 'sh', '-c', 'ls /run/fleet/units 2>/dev/null | wc -l')
        print('%s: fleet RSS %.1f MB with %s units' % (name, int(rss[0]) / 1024.0, units))


if __name__ == '__main__':
    main()
