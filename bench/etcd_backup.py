# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd backed up, destroyed and restored on the lab, timed, with the requests it cost.

On the lab made by ``make cluster`` (3 nodes, etcd v2 API, the demo behind HAProxy on port 8000),
this writes ``--keys`` keys (default 10000) below /bench/backup, then, while a client on the first
node asks the demo through its HAProxy every 50 ms (as in node_lifecycle.py):

1. ``playbooks/etcd_backup.yml`` (one follower copied at rest, the archive fetched here);
2. destroys etcd: stops it on every node and deletes every member's data;
3. ``playbooks/etcd_restore.yml`` with that archive (a new cluster from it, then site.yml).

It prints the time of each, the archive's size, the requests meanwhile and how many failed, and
what came back: the keys, the members, the units fleetctl shows active.

    .venv/bin/python bench/etcd_backup.py --prefix etcdfleet-core [--keys N]
"""

import os
import re
import tempfile
import time

from fleet_lab import ROOT, docker, nodes, parser
from node_lifecycle import CLIENT, answers, playbook

# Writes the keys through one HTTPS connection, with the node's etcdctl settings.
FILL = r'''
. /etc/profile.d/etcdctl.sh
python3 - "$1" <<'PY'
import http.client, os, ssl, sys, urllib.parse
url = urllib.parse.urlsplit(os.environ['ETCDCTL_ENDPOINTS'].split(',')[0])
ctx = ssl.create_default_context(cafile=os.environ.get('ETCDCTL_CACERT'))
if os.environ.get('ETCDCTL_CERT'):
    ctx.load_cert_chain(os.environ['ETCDCTL_CERT'], os.environ['ETCDCTL_KEY'])
conn = (http.client.HTTPSConnection(url.hostname, url.port, context=ctx) if url.scheme == 'https'
        else http.client.HTTPConnection(url.hostname, url.port))
for i in range(int(sys.argv[1])):
    conn.request('PUT', '/v2/keys/bench/backup/%05d' % i, body='value=%d' % i,
                 headers={'Content-Type': 'application/x-www-form-urlencoded'})
    response = conn.getresponse()
    response.read()
    if response.status >= 300:
        raise SystemExit('PUT %d: %d' % (i, response.status))
PY
'''


def shell(node, script, *args):
    return docker('exec', node, 'bash', '-lc', script, 'bench', *args)


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--inventory', default=os.path.join(ROOT, '.lab', 'inventory.yml'))
    p.add_argument('--keys', type=int, default=10000)
    args = p.parse_args()
    names = [n for n in nodes(args.prefix) if docker('inspect', '-f', '{{.State.Running}}', n) == 'true']
    client = names[0]
    shell(client, 'etcdctl rm -r /bench/backup >/dev/null 2>&1 || true')
    start = time.time()
    shell(client, FILL, str(args.keys))
    fill = time.time() - start
    local = tempfile.mkdtemp(prefix='etcd-backups-')
    docker('exec', '-d', client, 'bash', '-c', CLIENT)
    time.sleep(1)
    results = []
    try:
        start, end, output = playbook(args.inventory, 'etcd_backup.yml', '-e', 'etcd_backup_local_dir=' + local)
        results.append(('backup', start, end))
        archive = re.search(r'etcd backup: (\S+\.tar\.gz)', output).group(1)
        start = time.time()
        for name in names:
            docker('exec', name, 'bash', '-c', 'systemctl stop etcd && rm -rf /var/lib/etcd/etcdfleet')
        results.append(('destroy (etcd stopped, data deleted)', start, time.time()))
        start, end, output = playbook(args.inventory, 'etcd_restore.yml', '-e', 'etcd_backup_file=' + archive)
        results.append(('restore (members, daemons, verify)', start, end))
        time.sleep(2)
    finally:
        docker('exec', client, 'touch', '/tmp/bench-client.stop', check=False)
        time.sleep(1)
    keys = shell(client, 'etcdctl ls /bench/backup | wc -l')
    members = shell(client, 'ETCDCTL_API=3 etcdctl member list | wc -l')
    units = shell(client, 'fleetctl list-units --no-legend')
    active = sum(1 for line in units.splitlines() if 'active' in line.split() and 'running' in line.split())
    log = answers(client)
    size = os.path.getsize(archive) / 1e6
    print('%d keys written in %.1f s; archive %s, %.1f MB' % (args.keys, fill, os.path.basename(archive), size))
    print('%-40s %8s %9s %7s' % ('operation', 'seconds', 'requests', 'failed'))
    for title, start, end in results:
        during = [r for t, r in log if start <= t <= end]
        print('%-40s %8.1f %9d %7d' % (title, end - start, len(during), during.count('failed')))
    print('%-40s %8s %9d %7d' % ('whole run', '', len(log), sum(1 for entry in log if entry[1] == 'failed')))
    print('after the restore: %s of %d keys, %s members, %d of %d units active' % (
        keys, args.keys, members, active, len(units.splitlines())))


if __name__ == '__main__':
    main()
