# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names that must never become a service, an instance or a line of haproxy.cfg, and names
that must keep working (shared by the unit and the integration tests)."""

from __future__ import annotations

# one key segment each (a service name or an instance id); ``/`` and the empty name change the
# depth of a key, the others reach the validator as one segment
HOSTILE = {
    'newline': 'web-1\nlisten pwn\n  bind *:9999',
    'cr': 'web-2\rlisten pwn',
    'space': 'web 3',
    'tab': 'web\t4',
    'hash': 'web#5',
    'question': 'web?ttl=1',
    'percent': 'web%41-7',
    'slash': 'web/8',
    'dotdot': '..',
    'dot': '.',
    'single-quote': "web'9",
    'double-quote': 'web"10',
    'backslash': 'web\\11',
    'non-ascii': 'w\u00e9b-12',
    'nul': 'web\x00-13',
    'long': 'w' * 4096 + '-14',
    'empty': '',
}

# names a service or instance may have (the seeds', the stories' and the registrator's)
GOOD_NAMES = ['kappa-test', 'echo', 'centos', 'redis-A', 'busybox-443', 'docker-discover-1936',
              'my_app.v2']
GOOD_IDS = ['core-01:kappa-test-1:8000', 'core-02:kappa-test-3:8000:udp', 'apache@1',
            'redis.service', 'echo.service', 'h1:one:80', 'garbage-address']
