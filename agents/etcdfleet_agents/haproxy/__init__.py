# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HAProxy edge: a configuration rendered from a Jinja2 template, checked, installed, reloaded.

The one HAProxy mechanism of the node daemons (docker_discover's watcher; an ambassador can drive
its own HAProxy instance with the same pieces):

``Template``     a Jinja2 template file, read again on every render (so an edited file is used at
                 the next change), with the filters ``haproxy_quote`` and ``haproxy_ident``.
``Haproxy``      one HAProxy configuration file and the commands around it: ``check`` writes a
                 candidate next to the live file and runs ``haproxy -c`` on it, ``install`` moves a
                 checked candidate into place atomically, ``save_server_state`` dumps ``show
                 servers state`` from the runtime socket into the ``server-state-file`` (so health
                 state survives the reload), ``reload`` runs the reload command (by default
                 ``systemctl reload-or-restart haproxy``: HAProxy's master-worker mode hands the
                 listening sockets to the new worker, no connection is refused).
``Updater``      render -> compare -> check -> install -> reload. A configuration that does not
                 render or that ``haproxy -c`` rejects is never installed: the live one keeps
                 serving and the result says why. A render equal to the live file reloads nothing.
``MasterWorker`` an ``Haproxy`` whose process is the daemon's own child (``haproxy -W``, for a
                 daemon that owns its HAProxy instead of the node's haproxy.service): its first
                 reload starts it, later ones send SIGUSR2 (the master hands the listening sockets
                 to the new worker), ``stop`` ends it.

Modules: ``render`` (Template, the template's context built from the service catalog),
``process`` (Haproxy, MasterWorker, the runtime socket), ``apply`` (Updater, ApplyResult).

Nothing here logs: ``Updater.apply`` returns an ``ApplyResult`` and the daemon writes one line.
"""
