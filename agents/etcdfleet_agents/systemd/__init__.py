# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The edge to systemd: unit files in the runtime directory, ``systemctl`` calls and states."""
