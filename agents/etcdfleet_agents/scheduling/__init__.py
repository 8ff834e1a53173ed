# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleet's scheduling: the engine places units on machines (``placement`` decides, ``engine``
writes the decisions), and each machine's ``agent`` runs what the registry gives it. The registry
itself (keys, values, the store) is shared with the modules in ``plugins/module_utils/fleet_*``."""
