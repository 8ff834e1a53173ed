"""Fixtures of the lab tests (the helpers live in labnodes.py)."""

from labnodes import inventory, nodes  # noqa: F401  pylint: disable=unused-import
