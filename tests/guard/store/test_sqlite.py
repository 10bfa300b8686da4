"""guard.store: stores by URL, and what is SQLite's own (the Protocol's behaviour, shared with
PostgreSQL, is in test_contract.py)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.errors import ConfigError, StoreUnavailableError
from guard.store import STORES, SQLiteStore, open_store, register_store, sqlite_path
from guard.store.sqlite import MIGRATIONS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "s.db")
    yield s
    s.close()


def _flag(t: float, policies: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "time": t,
        "request_id": f"r{t:g}",
        "route": "m",
        "model": "up-m",
        "key": None,
        "action": "flag",
        "policies": policies,
        **extra,
    }


# -- open_store -------------------------------------------------------------------------------


def test_open_store_sqlite_url(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "c.db"
    s = open_store(f"sqlite:///{path}")
    try:
        assert isinstance(s, SQLiteStore)
        assert s.path == path
        assert path.exists()  # parent folders are created
    finally:
        s.close()


def test_sqlite_path_relative_and_absolute() -> None:
    assert sqlite_path("sqlite:///calguard.db") == Path("calguard.db")
    assert sqlite_path("sqlite:////abs/c.db") == Path("/abs/c.db")


@pytest.mark.parametrize("url", ["redis://localhost/0", "c.db", "mysql://u@h/db"])
def test_unknown_scheme_lists_the_known_ones(url: str) -> None:
    with pytest.raises(ConfigError, match="unknown store") as info:
        open_store(url)
    assert "sqlite://..." in info.value.message
    assert repr(url) in info.value.message


@pytest.mark.parametrize("url", ["sqlite://c.db", "sqlite:///", "sqlite://"])
def test_malformed_sqlite_url(url: str) -> None:
    with pytest.raises(ConfigError, match=r"sqlite:///path/to\.db"):
        open_store(url)


def test_register_store_serves_its_scheme(tmp_path: Path) -> None:
    seen: list[str] = []

    def factory(url: str) -> SQLiteStore:
        seen.append(url)
        return SQLiteStore(tmp_path / url.split("://", 1)[1])

    assert "testmem" not in STORES
    register_store("testmem", factory)
    try:
        s = open_store("testmem://x.db")
        assert isinstance(s, SQLiteStore)
        assert s.path == tmp_path / "x.db"
        assert seen == ["testmem://x.db"]
        s.close()
        with pytest.raises(ConfigError) as info:
            open_store("nope://x")
        assert "testmem://..." in info.value.message
    finally:
        STORES.pop("testmem", None)


# -- SQLite's own -------------------------------------------------------------------------------


def test_a_file_locked_past_the_timeout_is_a_503_not_a_500(tmp_path: Path) -> None:
    """Another writer holds the lock longer than ``timeout_s``: StoreUnavailableError (a 503
    the client may retry), and the store works again once the lock is released."""
    store = SQLiteStore(tmp_path / "l.db", timeout_s=0.05)
    holder = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailableError, match="database is locked") as info:
            store.update("k", lambda s: ({"n": 1}, None))
        assert info.value.status == 503
        assert info.value.code == "store_unavailable"
        with pytest.raises(StoreUnavailableError):
            store.add_flag(_flag(1.0, ["pii"]))
        assert store.load("k") is None  # readers are not blocked (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.update("k", lambda s: ({"n": 1}, None))
    assert store.add_flag(_flag(1.0, ["pii"])) == 1
    store.close()


def test_stores_opening_one_new_file_at_once_all_open(tmp_path: Path) -> None:
    """Replicas starting at once on a new file: SQLite may refuse the switch to WAL with
    "database is locked" at once, without waiting its busy timeout (start-up failed on about
    one such start in ten). Forty starts of six stores each: every store opens."""
    errors: list[BaseException] = []
    for trial in range(40):
        path = tmp_path / f"new{trial}.db"
        start = threading.Barrier(6)
        opened: list[SQLiteStore] = []

        def open_one(
            path: Path = path, start: threading.Barrier = start, opened: list[SQLiteStore] = opened
        ) -> None:
            try:
                start.wait(timeout=30)
                opened.append(SQLiteStore(path))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for store in opened:
            store.close()
    assert errors == []


def test_a_file_from_before_versioning_is_adopted_with_its_data(tmp_path: Path) -> None:
    """The tables as calguard created them before schema_version existed: opening the file
    records version 1 (and applies the later ones) and keeps every row."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0].statements:
        old.execute(statement)
    old.execute("INSERT INTO calibration_state (key, state, version) VALUES ('k', '{\"n\": 3}', 3)")
    old.close()
    store = SQLiteStore(path)
    try:
        assert store.migrated is not None
        assert (store.migrated.before, store.migrated.after) == (0, len(MIGRATIONS))
        assert store.schema_version() == len(MIGRATIONS)
        assert store.load("k") == {"n": 3}
    finally:
        store.close()


def test_ping_raises_when_the_file_is_gone_bad(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "p.db")
    s.close()
    (tmp_path / "p.db").write_bytes(b"not a database" * 100)
    s2 = SQLiteStore(tmp_path / "p.db", migrate=False)  # opened on the damaged file
    with pytest.raises(Exception, match="not a database"):
        s2.ping()


def test_open_store_must_exist_never_creates_a_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    with pytest.raises(ConfigError, match=r"no store at .*absent\.db"):
        open_store(url, must_exist=True)
    assert not (tmp_path / "absent.db").exists()
    open_store(url).close()  # without must_exist it is created
    open_store(url, must_exist=True).close()


def test_a_store_that_cannot_be_opened_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(ConfigError, match="cannot be opened"):
        open_store(f"sqlite:///{tmp_path / 'dir.db'}")


def test_a_bare_path_suggests_the_sqlite_url() -> None:
    with pytest.raises(ConfigError, match=r"written sqlite:///calguard\.db"):
        open_store("calguard.db")


def _in_a_new_thread(fn: Any) -> Any:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


@pytest.mark.parametrize("first", ["write", "open"])
def test_a_file_made_again_goes_on_from_the_last_id_whichever_thread_finds_it(
    tmp_path: Path, first: str
) -> None:
    """Connections are per thread. Before, only a thread whose own connection held the removed
    file learnt its last id; a thread with no connection yet (the store's pool has many) made
    the file again and gave id 1 a second time (seen in a full run: ids 1-4 for 2-5)."""
    path = tmp_path / "c.db"
    if first == "open":  # the ids were given by an earlier process
        earlier = SQLiteStore(path)
        earlier.add_flag(_flag(1.0, ["p"]))
        earlier.close()
    store = SQLiteStore(path)
    try:
        if first == "write":
            assert _in_a_new_thread(lambda: store.add_flag(_flag(1.0, ["p"]))) == 1
        for p in tmp_path.iterdir():
            p.unlink()
        assert _in_a_new_thread(lambda: store.add_flag(_flag(2.0, ["p"]))) == 2
    finally:
        store.close()
