# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service model: containers -> services (registrator, announcer) and the catalog of the
services prefix -> exposed ports (docker-discover, ambassador). Key and value formats are in
``plugins/module_utils/service_keys.py``."""
