# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetctl's tables: ``list-machines``, ``list-units`` and ``list-unit-files``, byte for byte.

Columns, legends (``7aa2819a.../172.17.8.101``) and the tab alignment of Go's
tabwriter as fleetctl configures it.  Pure: rows come from a registry
snapshot (``fleet_snapshot``).
"""

from dataclasses import dataclass
from typing import Mapping

from ansible_collections.etcdfleet.cluster.plugins.module_utils.fleet_registry import Machine, short_id
from ansible_collections.etcdfleet.cluster.plugins.module_utils.units import short_hash


def format_metadata(metadata):
    """Sorted ``k=v,k2=v2``, or ``-`` when empty (``fleetctl list-machines``)."""
    if not metadata:
        return '-'
    return ','.join('%s=%s' % (k, metadata[k]) for k in sorted(metadata))


def format_table(rows, padchar='\t', tabwidth=8, padding=1):
    """Align rows like Go's tabwriter as fleetctl configures it.

    Every cell but the last of a row is padded to its column's width plus
    ``padding``; with ``padchar='\\t'`` the width is rounded up to a multiple of
    ``tabwidth`` and filled with tabs (fleetctl's exact output), with a space
    it is filled with spaces.  Returns the text with a final newline (empty
    string for no rows).
    """
    rows = [[str(c) for c in row] for row in rows]
    if not rows:
        return ''
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell) + padding)
    lines = []
    for row in rows:
        out = []
        for i, cell in enumerate(row):
            out.append(cell)
            if i == len(row) - 1:
                break
            width = widths[i]
            if padchar == '\t':
                if tabwidth <= 0:
                    continue
                width = -(-width // tabwidth) * tabwidth
                out.append('\t' * (-(-(width - len(cell)) // tabwidth)))
            else:
                out.append(padchar * (width - len(cell)))
        lines.append(''.join(out))
    return '\n'.join(lines) + '\n'


def machine_id_legend(machine_id, full=False):
    """``7aa2819a...`` (or the full ID)."""
    if full:
        return machine_id
    return '%s...' % short_id(machine_id)


def machine_legend(machine, full=False):
    """``7aa2819a.../172.17.8.101``; ``machine`` is a :class:`Machine` or an ID."""
    if isinstance(machine, Machine):
        legend = machine_id_legend(machine.id, full)
        if machine.ip:
            legend = '%s/%s' % (legend, machine.ip)
        return legend
    return machine_id_legend(machine, full)


def _machine_lookup(machines):
    if machines is None:
        return {}
    if isinstance(machines, Mapping):
        return dict(machines)
    return {m.id: m for m in machines}


def _fields(fields, allowed, default):
    if fields is None:
        fields = default
    if isinstance(fields, str):
        fields = fields.split(',')
    fields = list(fields)
    if not fields or fields == ['']:
        raise ValueError('Must define output format')
    for name in fields:
        if name not in allowed:
            raise ValueError('Invalid key in output format: %r (valid fields: %s)'
                             % (name, ','.join(sorted(allowed))))
    return fields


def _table(fields, rows, legend, padchar):
    table = []
    if legend:
        table.append([f.upper() for f in fields])
    table.extend(rows)
    return format_table(table, padchar=padchar)


LIST_MACHINES_FIELDS = ('machine', 'ip', 'metadata')
LIST_UNITS_FIELDS = ('unit', 'machine', 'active', 'sub')
LIST_UNIT_FILES_FIELDS = ('unit', 'hash', 'dstate', 'state', 'target')


def list_machines_table(machines, fields=None, full=False, legend=True, padchar='\t'):
    """``fleetctl list-machines``: ``MACHINE IP METADATA``, sorted by machine ID."""
    fields = _fields(fields, ('machine', 'ip', 'metadata'), LIST_MACHINES_FIELDS)
    rows = []
    for m in sorted(machines, key=lambda m: m.id):
        cells = {
            'machine': machine_id_legend(m.id, full),
            'ip': m.ip or '-',
            'metadata': format_metadata(m.metadata),
        }
        rows.append([cells[f] for f in fields])
    return _table(fields, rows, legend, padchar)


def list_units_table(states, machines=None, fields=None, full=False, legend=True, padchar='\t'):
    """``fleetctl list-units``: one row per unit and machine reporting it."""
    fields = _fields(fields, ('unit', 'machine', 'active', 'sub', 'load', 'hash'),
                     LIST_UNITS_FIELDS)
    lookup = _machine_lookup(machines)
    rows = []
    for st in sorted(states, key=lambda s: (s.name, s.machine_id)):
        if st.machine_id:
            machine = lookup.get(st.machine_id) or Machine(id=st.machine_id)
            where = machine_legend(machine, full)
        else:
            where = '-'
        unit_hash = st.unit_hash or ''
        cells = {
            'unit': st.name,
            'machine': where,
            'active': st.active_state,
            'sub': st.sub_state,
            'load': st.load_state,
            'hash': (unit_hash if full else short_hash(unit_hash)) or '-',
        }
        rows.append([cells[f] for f in fields])
    return _table(fields, rows, legend, padchar)


def unit_reason(name, reason):
    """Why ``name`` cannot be placed, naming the unit once (the engine's reasons begin with it)."""
    if reason.startswith(name + ' '):
        return reason
    return '%s: %s' % (name, reason)


def list_unit_files_table(units, machines=None, fields=None, full=False, legend=True,
                          padchar='\t', notes=True):
    """``fleetctl list-unit-files``: ``UNIT HASH DSTATE STATE TARGET``.

    TARGET is ``<id>.../<ip>``, ``global`` or ``-``.  Besides fleet's fields,
    ``reason`` shows why a unit cannot be placed.  With ``notes`` and a
    legend, those reasons are also listed under the table.
    """
    fields = _fields(fields, ('unit', 'hash', 'dstate', 'state', 'target', 'tmachine',
                              'global', 'desc', 'reason'), LIST_UNIT_FILES_FIELDS)
    lookup = _machine_lookup(machines)
    rows = []
    reasons = []
    for u in sorted(units, key=lambda u: u.name):
        if u.is_global:
            target = 'global'
        elif u.machine_id:
            target = machine_legend(lookup.get(u.machine_id) or Machine(id=u.machine_id), full)
        else:
            target = '-'
        cells = {
            'unit': u.name,
            'hash': u.unit_hash if full else short_hash(u.unit_hash),
            'dstate': u.desired_state or '-',
            'state': '-' if (u.is_global or not u.current_state) else u.current_state,
            'target': target,
            'tmachine': target,
            'global': 'true' if u.is_global else 'false',
            'desc': u.description or '-',
            'reason': u.reason or '-',
        }
        rows.append([cells[f] for f in fields])
        if u.reason:
            reasons.append(unit_reason(u.name, u.reason))
    text = _table(fields, rows, legend, padchar)
    if notes and legend and reasons and 'reason' not in fields:
        text += '\n' + ''.join(line + '\n' for line in reasons)
    return text


@dataclass(frozen=True)
class UnitFileRow:
    """One unit as ``fleetctl list-unit-files`` shows it."""

    name: str
    unit_hash: str
    desired_state: str = ''
    current_state: str = ''
    machine_id: str = ''
    is_global: bool = False
    description: str = ''
    reason: str = ''


def unit_file_rows(snap):
    """A :class:`UnitFileRow` for every unit in the registry snapshot ``snap``, by name."""
    rows = []
    for name in sorted(snap.jobs):
        job = snap.jobs[name]
        if not job.exists:
            continue
        rows.append(UnitFileRow(
            name=name,
            unit_hash=job.unit_hash,
            desired_state=job.target_state or '',
            current_state=snap.current_state(name) or '',
            machine_id=job.target or '',
            is_global=job.is_global,
            description=job.unit.description if job.unit is not None else '',
            reason=job.reason,
        ))
    return rows
