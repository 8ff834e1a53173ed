# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests mirror the package layout (plugins/, agents/<subpackage>/, roles/, bench/); the
fakes several of them share (registrator_fakes: an in-memory etcd and Docker API) stay here."""

import os
import sys

UNIT_DIR = os.path.dirname(os.path.abspath(__file__))
if UNIT_DIR not in sys.path:
    sys.path.insert(0, UNIT_DIR)
