"""Versioned schema migrations, on SQLite and on PostgreSQL: a fresh store, a re-run, replicas
starting at once, an old schema upgraded (the next release's, and version 1 with its data to
version 2's history), a store newer than the code."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from guard.errors import ConfigError
from guard.store import Store, open_store, sqlite_path
from guard.store.migrations import Migration, MigrationResult, check_order, pending
from guard.store.sqlite import SQLiteStore
from tests.guard.store.states import pride_question

LATEST = len(SQLiteStore.migrations)
ADD_NOTE = Migration(LATEST + 1, "a note per flag", ("ALTER TABLE flags ADD COLUMN note TEXT",))
VERSIONS = [(v,) for v in range(1, LATEST + 1)]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("pg_url"))


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the database behind the store directly."""
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as db:
            return db.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def migrated(store: Store) -> MigrationResult:
    result = getattr(store, "migrated", None)
    assert isinstance(result, MigrationResult)
    return result


def test_a_fresh_store_is_at_the_latest_version(url: str) -> None:
    store = open_store(url)
    try:
        result = migrated(store)
        assert (result.before, result.after) == (0, LATEST)
        assert [m.version for m in result.applied] == list(range(1, LATEST + 1))
        assert store.schema_version() == LATEST  # type: ignore[attr-defined]
        assert query(url, "SELECT version FROM schema_version ORDER BY version") == VERSIONS
    finally:
        store.close()


def test_migrating_again_changes_nothing(url: str) -> None:
    open_store(url).close()
    store = open_store(url)
    try:
        assert migrated(store).applied == ()
        again = store.migrate()  # type: ignore[attr-defined]
        assert (again.before, again.after, again.applied) == (LATEST, LATEST, ())
        assert query(url, "SELECT version FROM schema_version ORDER BY version") == VERSIONS
    finally:
        store.close()


def test_replicas_starting_at_once_apply_each_migration_once(url: str) -> None:
    """Six stores opened at the same moment (each its own connection, as replicas have): one
    applies the migrations, the others wait for its lock and find nothing to do."""
    n = 6
    start = threading.Barrier(n)
    stores: list[Store] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def open_one() -> None:
        try:
            start.wait(timeout=30)
            s = open_store(url)
            with lock:
                stores.append(s)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert sorted(len(migrated(s).applied) for s in stores) == [0] * (n - 1) + [LATEST]
        assert query(url, "SELECT version FROM schema_version ORDER BY version") == VERSIONS
    finally:
        for s in stores:
            s.close()


def test_an_old_schema_is_upgraded_with_its_data(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    old = open_store(url)
    cls = type(old)
    old.update("k", lambda _: ({"n": 7}, None))
    fid = old.add_flag(
        {"time": 1.0, "request_id": "r", "route": "m", "model": "u", "key": None,
         "action": "flag", "policies": ["pii"]}
    )  # fmt: skip
    old.close()
    monkeypatch.setattr(cls, "migrations", (*cls.migrations, ADD_NOTE))  # the next release
    new = open_store(url)
    try:
        result = migrated(new)
        assert (result.before, result.after, result.applied) == (LATEST, LATEST + 1, (ADD_NOTE,))
        assert new.load("k") == {"n": 7}
        assert new.flag(fid) is not None
        assert query(url, "SELECT note FROM flags") == [(None,)]  # the new column is there
        assert query(url, "SELECT version FROM schema_version ORDER BY version") == [
            *VERSIONS,
            (LATEST + 1,),
        ]
    finally:
        new.close()


def test_version_1_with_its_data_gains_the_history(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written by the release before the history (schema 1, a PriDe key 5 questions
    in, flags with and without a key) is migrated to 2 with everything kept; the history starts
    with the next update, at the key's next version, and the old flags are counted per key."""
    with monkeypatch.context() as m:
        m.setattr(SQLiteStore, "migrations", SQLiteStore.migrations[:1])
        if url.startswith("postgres"):
            from guard.store.postgres import PostgresStore

            m.setattr(PostgresStore, "migrations", PostgresStore.migrations[:1])
        old = open_store(url)
        assert migrated(old).after == 1
        old.history_points = 0  # type: ignore[attr-defined]  # that release kept no history
        for _ in range(5):
            old.update("k", pride_question)
        for key, action in (("k", "flag"), ("k", "block"), (None, "flag")):
            old.add_flag(
                {"time": 1.0, "request_id": "r", "route": "m", "model": "u", "key": key,
                 "action": action, "policies": ["pii"]}
            )  # fmt: skip
        before = old.load("k")
        old.close()
    assert query(url, "SELECT version FROM schema_version") == [(1,)]
    new = open_store(url)
    try:
        result = migrated(new)
        assert (result.before, result.after) == (1, 2)
        assert [m.description for m in result.applied] == [
            "the history of each key's prior; flags counted per calibration key"
        ]
        assert new.load("k") == before
        assert new.history("k") == []  # nothing made up for the time before
        assert new.flag_counts() == {("k", "flag"): 1, ("k", "block"): 1, (None, "flag"): 1}
        new.update("k", pride_question)
        (point,) = new.history("k")
        assert point.version == 6
        assert point.methods["pride"]["seen"] == 6
        assert len(point.methods["pride"]["prior"]) == 4
    finally:
        new.close()


def test_a_store_newer_than_the_code_says_so(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = open_store(url)
    cls = type(first)
    first.close()
    with monkeypatch.context() as m:
        m.setattr(cls, "migrations", (*cls.migrations, ADD_NOTE))
        open_store(url).close()  # a newer calguard migrated it to 2
    with pytest.raises(
        ConfigError,
        match=rf"schema version {LATEST + 1}, newer than this calguard knows \({LATEST}\)",
    ):
        open_store(url)
    with pytest.raises(ConfigError, match="Upgrade calguard"):
        open_store(url, must_exist=True)  # readers too


def test_migrations_are_numbered_in_order() -> None:
    check_order(SQLiteStore.migrations)
    postgres = pytest.importorskip("guard.store.postgres")
    check_order(postgres.PostgresStore.migrations)
    assert len(postgres.PostgresStore.migrations) == LATEST  # one numbering for both stores
    with pytest.raises(ValueError, match=r"1\.\.n in order"):
        check_order([ADD_NOTE])
    with pytest.raises(ValueError, match=r"1\.\.n in order"):
        pending(0, [*SQLiteStore.migrations, ADD_NOTE, ADD_NOTE], "x")
    assert pending(LATEST, [*SQLiteStore.migrations, ADD_NOTE], "x") == [ADD_NOTE]
