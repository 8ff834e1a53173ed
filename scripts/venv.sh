#!/usr/bin/env bash
# Creates the project's virtual environment and installs the pinned Python packages into it.
# Usage: scripts/venv.sh VENV_DIR [PYTHON]
set -euo pipefail
venv=${1:?usage: venv.sh VENV_DIR [PYTHON]}
python=${2:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)

if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' >/dev/null 2>&1; then
  "$here/scripts/host-packages.sh" python3-venv
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-dev.txt"
