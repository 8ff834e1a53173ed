# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``fleetctl ssh UNIT|MACHINE [COMMAND...]``: the machine's address from the registry, then ssh.

The target is a machine ID (or a unique prefix of one) or a unit name, whose machine is the one
the unit is scheduled on; as in fleet 1.0, an argument that matches both is refused, and global
units are not supported. fleetctl then becomes the system's ``ssh`` client (exec, with an
argument list: no local shell ever sees the address, the user or the command). The address is
the public IP the machine registered and must be an IP address; the user name must look like one.
"""

import ipaddress
import re

from ansible_collections.etcdfleet.cluster.plugins.module_utils.unit_names import mangle_unit_name

SSH_CLIENT = 'ssh'
DEFAULT_PORT = 22
_USER_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9._-]*')
# ssh reads UserKnownHostsFile as a list of words with %-tokens: only plain paths pass
_PLAIN_PATH = re.compile(r'[A-Za-z0-9/._~+@:-]+')


class TargetNotFound(Exception):
    """The target names no machine fleetctl can reach (fleet 1.0's reasons)."""


def machine_address(snap, prefix):
    """Public IP of the one machine whose ID starts with ``prefix``."""
    found = [m for mid, m in sorted(snap.machines.items()) if prefix and mid.startswith(prefix)]
    if len(found) > 1:
        raise TargetNotFound('found more than one machine')
    if not found:
        raise TargetNotFound('machine does not exist')
    return found[0].ip


def unit_address(snap, name):
    """Public IP of the machine a unit is scheduled on ('' when it is not placed or has none)."""
    job = snap.jobs.get(mangle_unit_name(name))
    if job is None or not job.exists:
        raise TargetNotFound('unit does not exist')
    if job.is_global:
        raise TargetNotFound('global units unsupported')
    machine = snap.machines.get(job.target) if job.target else None
    return machine.ip if machine is not None else ''


def find_address(snap, target):
    """Address for a target that may be a machine or a unit (``fleetctl ssh TARGET``)."""
    lookups = []
    for lookup in (machine_address, unit_address):
        try:
            lookups.append(lookup(snap, target))
        except TargetNotFound:
            lookups.append(None)
    machine, unit = lookups
    if machine is not None and unit:
        raise TargetNotFound('ambiguous argument, both machine and unit found for `%s`.\n'
                             'Please use flag `-m` or `-u` to refine the search' % target)
    if machine is not None:
        return machine
    if unit:
        return unit
    raise TargetNotFound('could not find matching unit or machine')


def ssh_argv(address, user='', port=DEFAULT_PORT, forward_agent=False, strict_host_key_checking=True,
             known_hosts_file='', timeout=10.0, command=()):
    """The ssh client's argument list for a session on ``address`` (run with exec, never a shell).

    ``command`` words are passed as they are; like ssh itself (and fleet 1.0), the remote side
    runs them joined by spaces. Raises ``ValueError`` for an address, user or port that could be
    taken for something else.
    """
    try:
        host = str(ipaddress.ip_address(address))
    except ValueError:
        raise ValueError('machine address %r is not an IP address' % (address,)) from None
    if user and not _USER_NAME.fullmatch(user):
        raise ValueError('invalid ssh user name %r' % (user,))
    if known_hosts_file and not _PLAIN_PATH.fullmatch(known_hosts_file):
        raise ValueError('invalid known hosts file %r' % (known_hosts_file,))
    port = int(port)
    if not 0 < port < 65536:
        raise ValueError('invalid ssh port %r' % (port,))
    argv = [SSH_CLIENT, '-p', str(port)]
    if user:
        argv += ['-l', user]
    if forward_agent:
        argv.append('-A')
    if timeout and float(timeout) > 0:
        argv += ['-o', 'ConnectTimeout=%d' % max(1, int(round(float(timeout))))]
    if not strict_host_key_checking:
        argv += ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null']
    elif known_hosts_file:
        argv += ['-o', 'UserKnownHostsFile=%s' % known_hosts_file]
    argv += ['--', host]
    argv += list(command)
    return argv
