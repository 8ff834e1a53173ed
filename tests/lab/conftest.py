"""Fixtures of the lab tests (the helpers live in labnodes.py; tests/plaincore.py makes a controller
with ansible-core alone)."""

import os
import sys

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from labnodes import inventory, nodes  # noqa: F401,E402  pylint: disable=unused-import,wrong-import-position
