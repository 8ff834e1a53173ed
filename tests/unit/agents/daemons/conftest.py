# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the Docker-driven daemons' tests: an in-memory etcd (v2 and v3) and Docker API."""

import pytest

from registrator_fakes import FakeDocker, FakeStore


@pytest.fixture(params=['v2', 'v3'])
def store(request):
    return FakeStore(request.param)


@pytest.fixture
def docker():
    return FakeDocker()
