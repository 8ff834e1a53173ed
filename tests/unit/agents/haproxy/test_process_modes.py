# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy's configuration may hold the statistics page's password: a live or rejected file an
earlier version left readable by others is made readable by its owner only, even when the
configuration does not change (so it is never written again)."""

import os

from etcdfleet_agents.haproxy.process import CONFIG_MODE, Haproxy


def test_files_readable_by_others_are_restricted(tmp_path):
    config = tmp_path / "haproxy.cfg"
    for path, mode in ((config, 0o644), (tmp_path / "haproxy.cfg.rejected", 0o640)):
        path.write_text("userlist stats\n  user admin insecure-password secret\n")
        os.chmod(str(path), mode)
    haproxy = Haproxy(str(config))
    assert haproxy.restrict_modes() == [str(config), str(config) + ".rejected"]
    for path in (config, tmp_path / "haproxy.cfg.rejected"):
        assert os.stat(str(path)).st_mode & 0o777 == CONFIG_MODE
    assert haproxy.restrict_modes() == []


def test_missing_files_are_left_alone(tmp_path):
    assert Haproxy(str(tmp_path / "haproxy.cfg")).restrict_modes() == []
    assert not (tmp_path / "haproxy.cfg").exists()
