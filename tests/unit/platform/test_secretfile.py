"""proxy.platform.secretfile: a per-install secret made once, readable by its owner only (issue 10.10)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from proxy.errors import SettingsError
from proxy.platform.secretfile import read_or_create


def test_made_once_with_mode_0600_then_read(tmp_path: Path) -> None:
    path = tmp_path / "data" / "admin_api_key"
    made = iter(["first-secret", "second-secret"])
    assert read_or_create(path, lambda: next(made), setting="ADMIN_API_KEY") == ("first-secret", True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "first-secret\n"
    assert read_or_create(path, lambda: next(made), setting="ADMIN_API_KEY") == ("first-secret", False)
    assert [p.name for p in path.parent.iterdir()] == ["admin_api_key"]  # no temporary file is left behind


def test_a_file_another_process_wrote_wins(tmp_path: Path) -> None:
    path = tmp_path / "admin_api_key"
    path.write_text("  theirs \n")
    assert read_or_create(path, lambda: "ours", setting="ADMIN_API_KEY") == ("theirs", False)


def test_an_empty_file_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "admin_api_key"
    path.write_text("\n")
    with pytest.raises(SettingsError) as caught:
        read_or_create(path, lambda: "x", setting="ADMIN_API_KEY")
    assert caught.value.param == "ADMIN_API_KEY" and str(path) in caught.value.message


def test_a_directory_that_cannot_be_written_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("a file where DATA_DIR should be")
    with pytest.raises(SettingsError) as caught:
        read_or_create(tmp_path / "not-a-dir" / "admin_api_key", lambda: "x", setting="ADMIN_API_KEY")
    assert caught.value.param == "ADMIN_API_KEY" and "DATA_DIR" in caught.value.message


def test_a_file_others_can_read_is_used_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "admin_api_key"
    path.write_text("secret\n")
    path.chmod(0o644)
    assert read_or_create(path, lambda: "x", setting="ADMIN_API_KEY") == ("secret", False)
    assert any("chmod 600" in r.getMessage() for r in caplog.records)
