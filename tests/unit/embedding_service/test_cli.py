"""``python -m embedding_service`` argument and settings handling (serving itself is covered by the bench)."""

from __future__ import annotations

import pytest

from embedding_service.cli import main


def test_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "--host" in out and "--port" in out


def test_a_bad_environment_setting_exits_2_naming_it(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EMBED_MAX_BATCH", "lots")
    assert main([]) == 2
    assert "EMBED_MAX_BATCH" in capsys.readouterr().err


def test_a_bad_port_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
