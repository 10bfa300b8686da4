"""``calguard eval-offline``'s mistakes are one clear line on stderr and exit status 2, never a
traceback: bad counts and budgets, and files or folders that are not recordings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from guard.cli import main


def _recording(path: Path, gold: object = "B") -> Path:
    """Three 4-option questions in the recorded MCQ format (``probs_cyclic``, ``gold``)."""
    row = {"probs_cyclic": [[0.1, 0.6, 0.2, 0.1]] * 4, "gold": gold, "options": list("wxyz")}
    path.write_text("".join(json.dumps(row) + "\n" for _ in range(3)))
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seeds", "0"], "argument --seeds: must be 1 or more"),  # before: Stat.of traceback
        (["--seeds", "-1"], "argument --seeds: must be 1 or more"),
        (["--budget", "0"], "argument --budget: must be 1 or more"),  # before: planner traceback
        (["--budget", "nan"], "argument --budget: must be 1 or more"),  # before: a 'nan' row
        (["--budget", "-1"], "argument --budget: must be 1 or more"),
    ],
)
def test_argument_mistakes_are_usage_errors(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["eval-offline", str(_recording(tmp_path / "r.jsonl")), *extra])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_budget_under_the_refresh_cost_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1 call a question cannot also pay for the prior's refresh (1.06 for 4 options).
    code = main(["eval-offline", str(_recording(tmp_path / "r.jsonl")), "--budget", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("calguard: error: --budget 1 for r.jsonl: budget 1.0 is below")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d, "is a folder: name the recorded *.jsonl file(s) in it"),
        (lambda d: _write(d / "x.jsonl", b"\xd0\xff\n"), "not a recorded JSONL file (not UTF-8"),
        (lambda d: _recording(d / "x.jsonl", gold="Z"), "record 1: 'gold' must be an option"),
        (lambda d: _recording(d / "x.jsonl", gold=None), "record 1: 'gold' must be an option"),
    ],
)
def test_what_is_not_a_recording_is_named(
    make: Callable[[Path], Path],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = make(tmp_path)
    # eval-offline reads a folder's *.jsonl itself; replay-upstream and serve --replay take
    # files only (before: IsADirectoryError, UnicodeDecodeError, ValueError, KeyError).
    commands = [["replay-upstream", str(path)], ["serve", "--replay", str(path)]]
    if not path.is_dir():
        commands.append(["eval-offline", str(path)])
    for command in commands:
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err.startswith("calguard: error:"), command
        assert message in err, command


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
