# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetctl: its commands (``fleetctl``), its tables byte for byte as fleet 1.0 prints them
(``tables``) and ``status``/``journal`` on another machine through the registry (``remote``)."""
