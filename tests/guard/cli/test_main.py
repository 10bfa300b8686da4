"""``calguard`` itself: ``--version``, and help when called bare."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from guard.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"calguard {version('calguard')}"


def test_bare_calguard_prints_the_full_help_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 2  # argparse's status for a missing argument, as ruff and uv do
    err = capsys.readouterr().err
    assert err.startswith("usage: calguard")
    for command in ("serve", "flags", "demo", "eval-offline", "--version"):
        assert command in err  # the whole help, not only the usage line


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["srve"])
    assert info.value.code == 2
    assert "invalid choice: 'srve'" in capsys.readouterr().err
