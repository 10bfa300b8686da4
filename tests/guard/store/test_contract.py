"""The store Protocol's behaviour, one table for every store: each test runs on SQLite and on
PostgreSQL (a fresh database per test; skipped, saying why, when PostgreSQL is not reachable)."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.store import SQLiteStore, State, Store, open_store, sqlite_path
from guard.store.history import summary
from tests.guard.store.states import pride_question

Opener = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def reopen(store_url: str) -> Iterator[Opener]:
    """Opens another store on the same file or database (another process, as it were)."""
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(open_store(store_url))
        return opened[-1]

    yield open_one
    for s in opened:
        s.close()


@pytest.fixture
def store(reopen: Opener) -> Store:
    return reopen()


def with_history(url: str, points: int) -> Store:
    """A store on ``url`` that keeps at most ``points`` history points per key."""
    if url.startswith("sqlite"):
        return SQLiteStore(sqlite_path(url), history_points=points)
    from guard.store.postgres import PostgresStore

    return PostgresStore(url, history_points=points)


def flag_of(t: float, policies: list[str], **extra: Any) -> dict[str, Any]:
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


def increment(state: State | None) -> tuple[State, int]:
    n = (state or {"n": 0})["n"] + 1
    return {"n": n}, n


# -- calibration state ---------------------------------------------------------------------------


def test_load_of_an_unknown_key_is_none(store: Store) -> None:
    assert store.load("k") is None
    assert store.keys() == []


def test_update_reads_modifies_writes_and_returns_the_result(store: Store) -> None:
    seen: list[State | None] = []

    def bump(state: State | None) -> tuple[State, str]:
        seen.append(state)
        n = (state or {"n": 0})["n"] + 1
        return {"n": n, "prior": [0.5, 0.5]}, f"now {n}"

    assert store.update("k", bump) == "now 1"
    assert store.update("k", bump) == "now 2"
    assert seen == [None, {"n": 1, "prior": [0.5, 0.5]}]
    assert store.load("k") == {"n": 2, "prior": [0.5, 0.5]}


def test_a_failing_update_changes_nothing(store: Store) -> None:
    def boom(state: State | None) -> tuple[State, None]:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError, match="no"):
        store.update("new", boom)  # not even the key appears
    assert store.load("new") is None
    assert store.keys() == []
    store.update("k", lambda s: ({"n": 1}, None))
    with pytest.raises(RuntimeError, match="no"):
        store.update("k", boom)
    assert store.load("k") == {"n": 1}
    assert store.update("k", lambda s: ({"n": (s or {})["n"] + 1}, None)) is None
    assert store.load("k") == {"n": 2}


def test_state_survives_reopening(store: Store, reopen: Opener) -> None:
    store.update("k", lambda _: ({"v": "x", "nan": float("nan"), "u": "é\x00"}, None))
    store.close()
    again = reopen().load("k")
    assert again is not None
    assert (again["v"], again["u"]) == ("x", "é\x00")
    assert again["nan"] != again["nan"]


def test_keys_are_sorted_bytewise(store: Store) -> None:
    for k in ("b", "a", "c", "B", "m|mcq|4"):
        store.update(k, lambda _: ({}, None))
    store.update("a", lambda _: ({"again": True}, None))
    assert store.keys() == ["B", "a", "b", "c", "m|mcq|4"]


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "store-per-thread"])
def test_no_lost_update_across_threads(reopen: Opener, shared: bool) -> None:
    """Two writers incrementing one key: every increment is kept."""
    per_thread = 150
    first = reopen()
    stores = [first, first] if shared else [first, reopen()]
    results: list[list[int]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(i: int) -> None:
        try:
            start.wait(timeout=30)
            for _ in range(per_thread):
                results[i].append(stores[i].update("counter", increment))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert first.load("counter") == {"n": 2 * per_thread}
    # Every update saw a distinct state: the results are 1..2N, each once.
    assert sorted(results[0] + results[1]) == list(range(1, 2 * per_thread + 1))


def _increment_in_a_process(url: str, times: int, start: Any, out: Any) -> None:
    store = open_store(url)
    try:
        start.wait(60)
        out.put([store.update("counter", increment) for _ in range(times)])
    finally:
        store.close()


def test_no_lost_update_across_processes(store_url: str, reopen: Opener) -> None:
    """Two processes (spawned: nothing shared but the store) x many increments of one key."""
    per_process = 200
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    reopen().close()  # the schema exists before both start
    procs = [
        ctx.Process(target=_increment_in_a_process, args=(store_url, per_process, start, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0, 0]
    assert reopen().load("counter") == {"n": 2 * per_process}
    assert sorted(results[0] + results[1]) == list(range(1, 2 * per_process + 1))


# -- history ------------------------------------------------------------------------------------


def test_the_history_is_bounded_and_spans_the_whole_life_of_a_key(store_url: str) -> None:
    """100 questions, at most 8 points: after every update the key holds 8 or fewer, and at
    the end one every 16 questions, from the 16th to the 96th, each the prior as it was."""
    store = with_history(store_url, 8)
    expected = {8: range(1, 9), 12: range(2, 13, 2), 40: range(8, 41, 8), 64: range(8, 65, 8)}
    try:
        for n in range(1, 101):
            assert store.update("k", pride_question) == n
            assert len(store.history("k")) <= 8
            if n in expected:
                assert [p.version for p in store.history("k")] == list(expected[n])
        points = store.history("k")
        assert [p.version for p in points] == [16, 32, 48, 64, 80, 96]
        assert [p.methods["pride"]["seen"] for p in points] == [16, 32, 48, 64, 80, 96]
        assert all(abs(sum(p.methods["pride"]["prior"]) - 1) < 1e-5 for p in points)
        assert points[0].time <= points[-1].time
        state = store.load("k")
        assert state is not None
        assert points[-1].methods != summary(state)  # taken then, not now: 4 questions ago
        assert store.history("other") == []
    finally:
        store.close()


def _questions_in_a_process(url: str, times: int, start: Any, out: Any) -> None:
    store = with_history(url, 8)
    try:
        start.wait(60)
        out.put([store.update("k", pride_question) for _ in range(times)])
    finally:
        store.close()


def test_the_history_of_a_key_two_processes_update(store_url: str) -> None:
    """Two processes (spawned) answering questions of one key: every question counted once, and
    the history exactly what one process would have kept: no point lost, none twice, each the
    state its own update wrote."""
    per_process = 60
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    with_history(store_url, 8).close()  # the schema exists before both start
    procs = [
        ctx.Process(target=_questions_in_a_process, args=(store_url, per_process, start, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted(results[0] + results[1]) == list(range(1, 2 * per_process + 1))
    store = with_history(store_url, 8)
    try:
        points = store.history("k")
        assert [p.version for p in points] == list(range(16, 2 * per_process + 1, 16))
        assert [p.methods["pride"]["seen"] for p in points] == [p.version for p in points]
    finally:
        store.close()


def test_a_point_is_the_state_its_update_wrote_and_fails_with_it(store_url: str) -> None:
    store = with_history(store_url, 64)
    try:
        store.update("k", pride_question)
        state = store.load("k")
        assert state is not None
        (point,) = store.history("k")
        assert (point.version, point.methods) == (1, summary(state))

        def boom(state: State | None) -> tuple[State, None]:
            raise RuntimeError("no")

        with pytest.raises(RuntimeError):
            store.update("k", boom)
        assert len(store.history("k")) == 1  # no point for an update that did not happen
        store.update("plain", lambda _: ({"n": 1}, None))
        assert store.history("plain") == []  # a state without a prior has no history
    finally:
        store.close()


def test_no_history_when_asked_for_none(store_url: str) -> None:
    store = with_history(store_url, 0)
    try:
        for _ in range(3):
            store.update("k", pride_question)
        assert store.history("k") == []
    finally:
        store.close()


# -- flags --------------------------------------------------------------------------------------


def test_add_flag_returns_ids_and_flag_reads_the_record_back(store: Store) -> None:
    one = store.add_flag(flag_of(1.0, ["pii"], verdicts=[{"policy": "pii"}], response={"x": 1}))
    two = store.add_flag(flag_of(2.0, ["denylist", "pii"]))
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


def test_a_flag_is_committed_when_add_flag_returns(store: Store, reopen: Opener) -> None:
    fid = store.add_flag(flag_of(1.0, ["pii"]))
    other = reopen()  # another connection, as another replica would read it
    assert other.count_flags() == 1
    assert other.flag(fid) is not None


def test_flags_are_oldest_first_and_filtered(store: Store) -> None:
    ids = [
        store.add_flag(flag_of(1.0, ["pii"])),
        store.add_flag(flag_of(2.0, ["denylist"])),
        store.add_flag(flag_of(3.0, ["denylist", "pii"])),
        store.add_flag(flag_of(4.0, ["secrets"])),
    ]
    assert [f["id"] for f in store.flags()] == ids
    assert [f["time"] for f in store.flags(since=2.5)] == [3.0, 4.0]
    assert [f["time"] for f in store.flags(since=2.0)] == [2.0, 3.0, 4.0]
    assert [f["time"] for f in store.flags(policy="pii")] == [1.0, 3.0]
    assert [f["time"] for f in store.flags(policy="denylist")] == [2.0, 3.0]
    assert store.flags(policy="pi") == []  # whole policy names only
    assert store.flags(policy="list") == []
    assert store.flags(policy="%") == []  # no wildcards either
    assert [f["time"] for f in store.flags(limit=2)] == [1.0, 2.0]
    assert [f["time"] for f in store.flags(since=1.5, policy="pii", limit=1)] == [3.0]
    assert store.flags(since=10.0) == []


def test_after_an_id_pages_through_the_log(store: Store) -> None:
    ids = [store.add_flag(flag_of(float(t), ["pii"] if t % 2 else ["regex"])) for t in range(7)]
    seen: list[int] = []
    after = 0
    while page := store.flags(after=after, limit=3):
        seen += [f["id"] for f in page]
        after = page[-1]["id"]
    assert seen == ids
    assert [f["id"] for f in store.flags(after=ids[2], policy="pii")] == [ids[3], ids[5]]
    assert store.flags(after=ids[-1]) == []


def test_policy_filter_matches_the_name_literally(store: Store) -> None:
    store.add_flag(flag_of(1.0, ["max-length"]))
    store.add_flag(flag_of(2.0, ["max_length"]))
    assert [f["time"] for f in store.flags(policy="max_length")] == [2.0]


def test_hostile_text_round_trips(store: Store) -> None:
    """NUL, control and non-BMP characters, quotes: kept exactly in the record."""
    odd = "a\x00b\x1b[31m'\"; DROP TABLE flags; --\U0001f600\u202e"
    fid = store.add_flag(
        flag_of(1.0, ["pii"], model=odd, request_id=odd, response={"content": odd})
    )
    rec = store.flag(fid)
    assert rec is not None
    assert (rec["model"], rec["request_id"], rec["response"]["content"]) == (odd, odd, odd)
    assert store.count_flags() == 1


def test_flags_are_counted_per_key_and_action(store: Store) -> None:
    assert store.flag_counts() == {}
    for key, action in [("a", "flag"), ("a", "flag"), ("a", "block"), (None, "flag"),
                        ("b", "block")]:  # fmt: skip
        store.add_flag(flag_of(1.0, ["pii"], key=key, action=action))
    assert store.flag_counts() == {
        ("a", "flag"): 2, ("a", "block"): 1, (None, "flag"): 1, ("b", "block"): 1
    }  # fmt: skip


def test_ping_answers_on_a_working_store(store: Store) -> None:
    store.ping()
