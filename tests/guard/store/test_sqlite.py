"""guard.store: stores by URL, and the SQLite store (atomic updates, the flag log)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.errors import ConfigError
from guard.store import STORES, SQLiteStore, State, open_store, register_store, sqlite_path


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


# -- calibration state ---------------------------------------------------------------------------


def test_load_of_an_unknown_key_is_none(store: SQLiteStore) -> None:
    assert store.load("k") is None
    assert store.keys() == []


def test_update_reads_modifies_writes_and_returns_the_result(store: SQLiteStore) -> None:
    seen: list[State | None] = []

    def bump(state: State | None) -> tuple[State, str]:
        seen.append(state)
        n = (state or {"n": 0})["n"] + 1
        return {"n": n, "prior": [0.5, 0.5]}, f"now {n}"

    assert store.update("k", bump) == "now 1"
    assert store.update("k", bump) == "now 2"
    assert seen == [None, {"n": 1, "prior": [0.5, 0.5]}]
    assert store.load("k") == {"n": 2, "prior": [0.5, 0.5]}


def test_a_failing_update_changes_nothing(store: SQLiteStore) -> None:
    store.update("k", lambda s: ({"n": 1}, None))

    def boom(state: State | None) -> tuple[State, None]:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError, match="no"):
        store.update("k", boom)
    assert store.load("k") == {"n": 1}
    assert store.update("k", lambda s: ({"n": (s or {})["n"] + 1}, None)) is None
    assert store.load("k") == {"n": 2}


def test_state_survives_reopening(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "p.db")
    s.update("k", lambda _: ({"v": "x"}, None))
    s.close()
    again = SQLiteStore(tmp_path / "p.db")
    try:
        assert again.load("k") == {"v": "x"}
    finally:
        again.close()


def _increment(state: State | None) -> tuple[State, int]:
    n = (state or {"n": 0})["n"] + 1
    return {"n": n}, n


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "store-per-thread"])
def test_no_lost_update_across_threads(tmp_path: Path, shared: bool) -> None:
    """Two writers incrementing one key: every increment is kept (stores per thread stand for
    separate worker processes on one file)."""
    per_thread = 150
    first = SQLiteStore(tmp_path / "c.db")
    stores = [first, first] if shared else [first, SQLiteStore(tmp_path / "c.db")]
    results: list[list[int]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(i: int) -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                results[i].append(stores[i].update("counter", _increment))
        except BaseException as exc:
            errors.append(exc)
        finally:
            stores[i].close()  # closes this thread's connection

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert first.load("counter") == {"n": 2 * per_thread}
    # Every update saw a distinct state: the results are 1..2N, each once.
    assert sorted(results[0] + results[1]) == list(range(1, 2 * per_thread + 1))
    first.close()


def test_keys_are_sorted(store: SQLiteStore) -> None:
    for k in ("b", "a", "c"):
        store.update(k, lambda _: ({}, None))
    store.update("a", lambda _: ({"again": True}, None))
    assert store.keys() == ["a", "b", "c"]


# -- flags --------------------------------------------------------------------------------------


def test_add_flag_returns_ids_and_flag_reads_the_record_back(store: SQLiteStore) -> None:
    one = store.add_flag(_flag(1.0, ["pii"], verdicts=[{"policy": "pii"}], response={"x": 1}))
    two = store.add_flag(_flag(2.0, ["denylist", "pii"]))
    assert two > one
    rec = store.flag(one)
    assert rec is not None
    assert rec["id"] == one
    assert rec["policies"] == ["pii"]
    assert rec["verdicts"] == [{"policy": "pii"}]
    assert rec["response"] == {"x": 1}
    assert rec["request_id"] == "r1"
    assert store.flag(two + 100) is None
    assert store.count_flags() == 2


def test_flags_are_oldest_first_and_filtered(store: SQLiteStore) -> None:
    ids = [
        store.add_flag(_flag(1.0, ["pii"])),
        store.add_flag(_flag(2.0, ["denylist"])),
        store.add_flag(_flag(3.0, ["denylist", "pii"])),
        store.add_flag(_flag(4.0, ["secrets"])),
    ]
    assert [f["id"] for f in store.flags()] == ids
    assert [f["time"] for f in store.flags(since=2.5)] == [3.0, 4.0]
    assert [f["time"] for f in store.flags(since=2.0)] == [2.0, 3.0, 4.0]
    assert [f["time"] for f in store.flags(policy="pii")] == [1.0, 3.0]
    assert [f["time"] for f in store.flags(policy="denylist")] == [2.0, 3.0]
    assert store.flags(policy="pi") == []  # whole policy names only
    assert store.flags(policy="list") == []
    assert [f["time"] for f in store.flags(limit=2)] == [1.0, 2.0]
    assert [f["time"] for f in store.flags(since=1.5, policy="pii", limit=1)] == [3.0]
    assert store.flags(since=10.0) == []


def test_policy_filter_matches_the_name_literally(store: SQLiteStore) -> None:
    store.add_flag(_flag(1.0, ["max-length"]))
    store.add_flag(_flag(2.0, ["max_length"]))
    assert [f["time"] for f in store.flags(policy="max_length")] == [2.0]


def test_ping_answers_on_a_working_store(store: SQLiteStore) -> None:
    store.ping()


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
