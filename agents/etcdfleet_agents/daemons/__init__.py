# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service daemons' logic (registrator, announcer, docker-discover, ambassador); each is run
by its entry module ``python3 -m etcdfleet_agents.<name>``. They reach Docker through docker/,
the registry through store/ and HAProxy through haproxy/."""
