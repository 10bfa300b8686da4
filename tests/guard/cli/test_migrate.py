"""``calguard migrate``: on SQLite and PostgreSQL, first run, re-run, a store too new."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.cli.main import main
from guard.store.migrations import Migration
from guard.store.sqlite import SQLiteStore


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_migrate_applies_then_has_nothing_to_do(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--store", url]) == 0
    out = capsys.readouterr().out
    assert f"store {url}: schema version 0 -> 2" in out
    assert "applied 1: calibration state and the flag log" in out
    assert "applied 2: the history of each key's prior; flags counted per calibration key" in out
    assert main(["migrate", "--store", url]) == 0
    assert "schema version 2, up to date; nothing to do" in capsys.readouterr().out


def test_migrate_reads_the_store_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"store: sqlite:///{tmp_path / 'from-config.db'}\n")
    assert main(["migrate", "--config", str(config)]) == 0
    assert "0 -> 2" in capsys.readouterr().out
    assert (tmp_path / "from-config.db").is_file()


def test_a_store_newer_than_this_calguard_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with monkeypatch.context() as m:
        m.setattr(SQLiteStore, "migrations", (*SQLiteStore.migrations, Migration(3, "x", ())))
        assert main(["migrate", "--store", url]) == 0
    capsys.readouterr()
    assert main(["migrate", "--store", url]) == 2
    err = capsys.readouterr().err
    assert "schema version 3, newer than this calguard knows (2)" in err
    assert "Upgrade calguard" in err


def test_a_password_is_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    from guard.testing.servers import free_port

    url = f"postgresql://u:hunter2@127.0.0.1:{free_port()}/db?timeout_s=0.5"
    assert main(["migrate", "--store", url]) == 2
    err = capsys.readouterr().err
    assert "cannot be opened" in err
    assert "hunter2" not in err
