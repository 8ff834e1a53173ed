# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker edge: the engine's API client, its container event stream, inspect documents."""
