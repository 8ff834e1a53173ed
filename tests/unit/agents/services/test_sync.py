# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One registrator pass planned against what the store holds."""

from __future__ import annotations

from etcdfleet_agents.services.containers import container_services
from etcdfleet_agents.services.sync import plan_sync
from service_samples import OPTS, container, published


# ---------------------------------------------------------------------------
# registrator sync plan
# ---------------------------------------------------------------------------

class TestPlanSync:
    def services(self, *descs):
        found = []
        for desc in descs:
            found.extend(container_services(desc, OPTS).services)
        return found

    def test_fresh_start_writes_everything(self):
        wanted = self.services(container(name='a', ports=[published(80, 32000)]),
                               container(name='b', ports=[published(80, 32001)]))
        plan = plan_sync(wanted, [], 'core-01')
        assert plan.put == {
            '/services/nginx/core-01:a:80': '10.10.0.11:32000',
            '/services/nginx/core-01:b:80': '10.10.0.11:32001',
        }
        assert plan.changed == list(plan.put)
        assert plan.delete == [] and plan.conflicts == []

    def test_stale_and_changed_keys(self):
        wanted = self.services(container(name='a', ports=[published(80, 32000)]),
                               container(name='b', ports=[published(80, 40000)]))
        existing = [
            ('/services/nginx', None),
            ('/services/nginx/core-01:a:80', '10.10.0.11:32000'),        # unchanged
            ('/services/nginx/core-01:b:80', b'10.10.0.11:32001'),       # moved to a new host port
            ('/services/nginx/core-01:gone:80', '10.10.0.11:32002'),     # container stopped meanwhile
            ('/services/dns/core-01:gone-dns:53:udp', '10.10.0.11:5353'),  # stale udp key
            ('/services/nginx/core-02:c:80', '10.10.0.12:32000'),        # another node's key
            ('/services/nginx/fixed-id', '10.10.0.11:1'),                # not provably ours
            ('/services/redis-A/redis.service', '{"host": "10.10.0.11", "port": 6379}'),
        ]
        plan = plan_sync(wanted, existing, 'core-01')
        assert plan.changed == ['/services/nginx/core-01:b:80']
        assert plan.delete == ['/services/dns/core-01:gone-dns:53:udp', '/services/nginx/core-01:gone:80']
        assert plan.put['/services/nginx/core-01:b:80'] == '10.10.0.11:40000'

    def test_bytes_from_etcd_v3(self):
        wanted = self.services(container(name='a', ports=[published(80, 32000)]))
        existing = [(b'/services/nginx/core-01:a:80', b'10.10.0.11:32000'),
                    (b'/services/nginx/core-01:gone:80', b'10.10.0.11:1')]
        plan = plan_sync(wanted, existing, 'core-01')
        assert plan.changed == [] and plan.delete == ['/services/nginx/core-01:gone:80']

    def test_second_pass_changes_nothing(self):
        wanted = self.services(container(name='a', ports=[published(80, 32000), published(53, 32001, 'udp')]))
        first = plan_sync(wanted, [], 'core-01')
        second = plan_sync(wanted, list(first.put.items()), 'core-01')
        assert second.changed == [] and second.delete == []
        assert second.put == first.put

    def test_custom_prefix(self):
        wanted = self.services(container(name='a'))
        plan = plan_sync(wanted, [('/svc/old/core-01:xx:1', '1.1.1.1:1'),
                                  ('/services/old/core-01:xx:1', '1.1.1.1:1')],
                         'core-01', prefix='/svc')
        assert list(plan.put) == ['/svc/nginx/core-01:a:80']
        assert plan.delete == ['/svc/old/core-01:xx:1']

    def test_conflicting_services_keep_first(self):
        one = container_services(container(name='a', labels={'SERVICE_ID': 'shared'}), OPTS).services
        two = container_services(container(name='b', labels={'SERVICE_ID': 'shared'},
                                           ports=[published(80, 32999)]), OPTS).services
        plan = plan_sync(two + one, [], 'core-01')
        assert plan.put == {'/services/nginx/shared': '10.10.0.11:32768'}
        assert len(plan.conflicts) == 1 and '/services/nginx/shared' in plan.conflicts[0]
