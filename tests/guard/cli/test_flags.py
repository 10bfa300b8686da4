"""``calguard flags``: reading the flag log never creates a store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from guard.cli import main
from guard.cli.flags import SUBCOMMANDS
from guard.store import SQLiteStore


@pytest.mark.parametrize("command", [["list"], ["show", "1"], ["export"]])
def test_no_store_file_says_so_and_creates_none(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALGUARD_STORE", raising=False)
    monkeypatch.delenv("CALGUARD_CONFIG", raising=False)
    assert main(["flags", *command]) == 2
    err = capsys.readouterr().err
    assert "no store at calguard.db (sqlite:///calguard.db)" in err
    assert "--store" in err
    assert list(tmp_path.iterdir()) == []  # no empty calguard.db left behind


def test_an_existing_store_is_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cg.db"
    store = SQLiteStore(db)
    store.add_flag(
        {
            "time": 1_700_000_000.0,
            "request_id": "req-1",
            "route": "default_route",
            "model": "m",
            "key": None,
            "action": "flag",
            "policies": ["pii"],
            "verdicts": [{"policy": "pii", "reason": "an email"}],
        }
    )
    store.close()
    assert main(["flags", "list", "--store", f"sqlite:///{db}"]) == 0
    out = capsys.readouterr()
    assert "pii" in out.out
    assert "an email" in out.out
    assert "1 record(s)" in out.err


def test_the_config_file_can_come_from_calguard_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "from-config.db"
    SQLiteStore(db).close()
    config = tmp_path / "c.yaml"
    config.write_text(f"store: sqlite:///{db}\n")
    monkeypatch.setenv("CALGUARD_CONFIG", str(config))
    monkeypatch.delenv("CALGUARD_STORE", raising=False)
    assert main(["flags", "list"]) == 0
    assert "0 record(s)" in capsys.readouterr().err


def _hostile_store(tmp_path: Path) -> str:
    db = tmp_path / "h.db"
    store = SQLiteStore(db)
    store.add_flag(
        {
            "time": 1_700_000_000.0,
            "request_id": "req-2",
            "route": '=HYPERLINK("http://x")',
            "model": "m\x1b]0;pwned\x07\x1b[2J",
            "key": "@SUM(1)",
            "action": "flag",
            "policies": ["regex"],
            "verdicts": [{"policy": "regex", "reason": "-2+3\nforged line \u202eevil"}],
        }
    )
    store.close()
    return f"sqlite:///{db}"


def test_csv_export_never_hands_a_spreadsheet_a_formula(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _hostile_store(tmp_path)
    assert main(["flags", "export", "--format", "csv", "--store", url]) == 0
    import csv
    import io

    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    for column in ("route", "key", "reasons"):
        assert row[column][:1] == "'", column  # shown as text, never evaluated
    assert row["route"] == '\'=HYPERLINK("http://x")'


def test_list_never_hands_the_terminal_a_control_sequence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _hostile_store(tmp_path)
    assert main(["flags", "list", "--store", url]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\u202e" not in out
    assert out.count("\n") == 1  # one record, one line: no forged line
    assert "\\x1b" in out  # shown, escaped


def test_help_says_what_each_subcommand_does(capsys: pytest.CaptureFixture[str]) -> None:
    # Before: 'calguard flags --help' listed {list,show,export} and nothing about them.
    with pytest.raises(SystemExit):
        main(["flags", "--help"])
    said = capsys.readouterr().out
    for name, does in SUBCOMMANDS.items():
        assert name in said
        assert " ".join(does.split()[:3]) in " ".join(said.split())


def test_a_reader_that_leaves_early_is_no_traceback(tmp_path: Path) -> None:
    """``calguard flags export | head``: before, a BrokenPipeError traceback on stderr."""
    db = tmp_path / "cg.db"
    store = SQLiteStore(db)
    for i in range(2_000):  # well over a pipe's buffer of JSON lines
        store.add_flag(
            {"time": 1_700_000_000.0 + i, "request_id": f"req-{i}", "route": "r", "model": "m",
             "key": None, "action": "flag", "policies": ["pii"],
             "verdicts": [{"policy": "pii", "reason": "an email " + "x" * 100}]}
        )  # fmt: skip
    store.close()
    cmd = [sys.executable, "-m", "guard.cli", "flags", "export", "--store", f"sqlite:///{db}"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.read(100).startswith(b'{"id": ')
        proc.stdout.close()  # as head does once it has its lines
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_a_limit_under_one_is_a_usage_error(
    limit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: --limit -1 listed every record, --limit 0 none.
    with pytest.raises(SystemExit) as info:
        main(["flags", "list", "--store", f"sqlite:///{tmp_path / 'cg.db'}", "--limit", limit])
    assert info.value.code == 2
    assert "argument --limit: must be 1 or more" in capsys.readouterr().err
