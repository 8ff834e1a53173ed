"""Offline stand-in for ansible-test's pip bootstrap download.

ansible-test bootstraps pip in each virtual environment it makes by running a `get-pip` script
that it downloads from a host that is not always reachable. It looks for the script in
~/.ansible/test/cache first; `make sanity` puts this one there. It takes the same arguments as
`get-pip.py` (pip install options and requirements) and does the same job with the interpreter's
own `ensurepip` and the package index pip is configured for.
"""

import os
import subprocess
import sys

SKIPPED = {"--no-setuptools", "--no-wheel"}


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    env = dict(os.environ)
    env.pop("PIP_CONFIG_FILE", None)
    args = [arg for arg in sys.argv[1:] if arg not in SKIPPED]
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args, env=env)


if __name__ == "__main__":
    main()
