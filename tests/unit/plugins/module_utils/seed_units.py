# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The seed article's unit, shared by the unit file and [X-Fleet] rule tests."""

# The unit as fleet 1.0's `fleetctl cat kappa-test@.service` printed it in the
# seed article; the same article's `fleetctl list-unit-files --full` shows its
# hash as 559024d01378ac913e63c18dfd75f7a58d1f0bf8.  (The backslash at the end
# of the ExecStart line only joins the Python source lines: it is one line.)
KAPPA_CAT = """[Unit]
Description=kappa-test
After=docker.service
Requires=docker.service

[Service]
ExecStartPre=-/usr/bin/docker kill kappa-test-%i
ExecStartPre=-/usr/bin/docker rm kappa-test-%i
ExecStart=/usr/bin/docker run --name=kappa-test-%i --hostname=kappa-test-%i -p 8000 centos:centos6 \
/bin/sh -c 'cd /tmp/ ; hostname -s > index.html ; python -m SimpleHTTPServer'
ExecStop=/usr/bin/docker stop kappa-test-%i

[Install]
WantedBy=multi-user.target

[X-Fleet]
X-Conflicts=kappa-test-@*.service
"""
KAPPA_FLEET_HASH = '559024d01378ac913e63c18dfd75f7a58d1f0bf8'

KAPPA_TEMPLATE = KAPPA_CAT.replace('kappa-test-@*.service', 'kappa-test@*.service')
