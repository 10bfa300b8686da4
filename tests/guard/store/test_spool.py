"""The spool (:mod:`guard.store.spool`): flag records the store could not take are kept on disk,
in order, and moved into the store once it answers; none lost, none moved twice, with writers
in several threads and processes and a drainer running at the same time."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.store.spool import Spool, spool_dir
from guard.store.sqlite import SQLiteStore
from guard.testing.downable_store import DownableStore as Downable


def record(n: int) -> dict[str, Any]:
    return {"time": 1000.0 + n, "request_id": f"req-{n}", "route": "m", "model": "m",
            "key": None, "action": "flag", "policies": ["pii"], "response": {"n": n}}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Downable]:
    s = Downable(tmp_path / "c.db")
    yield s
    s.close()


def ids(store: SQLiteStore) -> list[str]:
    return [f["request_id"] for f in store.flags()]


def test_records_wait_in_order_and_go_in_when_the_store_is_back(
    store: Downable, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool", store, every_s=3600)  # drained by hand here
    try:
        for n in range(5):
            spool.put(record(n))
        assert spool.count() == 5
        assert spool.waiting
        store.down = True
        assert spool.drain() == 0
        assert spool.count() == 5
        assert store.count_flags() == 0
        store.down, store.flaky, store.calls = False, 3, 0  # the third insert fails
        assert spool.drain() == 2
        assert ids(store) == ["req-0", "req-1"]
        assert spool.count() == 3
        store.flaky = 0
        assert spool.drain() == 3
        assert ids(store) == [f"req-{n}" for n in range(5)]
        got = store.flags()[4]
        assert got["time"] == 1004.0
        assert got["response"] == {"n": 4}
        assert spool.count() == 0
        assert not spool.waiting
        assert list((tmp_path / "spool").iterdir()) == []
    finally:
        spool.close()


def test_a_line_cut_short_by_a_crash_is_skipped_and_the_rest_go_in(
    store: Downable, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    folder.mkdir()
    whole = json.dumps({**record(1), "request_id": "a"})
    (folder / "1-dead.jsonl").write_text(whole + "\n" + whole[:40])  # died mid-write
    spool = Spool(folder, store, every_s=3600)
    try:
        assert spool.waiting  # a previous run's records
        assert spool.drain() == 1
        assert ids(store) == ["a"]
        assert not spool.waiting
    finally:
        spool.close()


def test_a_previous_runs_records_are_moved_in_at_start(store: Downable, tmp_path: Path) -> None:
    first = Spool(tmp_path / "spool", store, every_s=3600)
    first.put(record(1))
    first.close()  # the process ends with a record waiting
    again = Spool(tmp_path / "spool", store, every_s=0.05)
    try:
        deadline = time.monotonic() + 30
        while store.count_flags() == 0:
            assert time.monotonic() < deadline, "the spool's thread never moved the record"
            time.sleep(0.02)
        assert ids(store) == ["req-1"]
    finally:
        again.close()


def test_a_writer_whose_file_was_drained_starts_a_new_one(store: Downable, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", store, every_s=3600)
    try:
        spool.put(record(1))
        spool.drain()  # removes the file the writer appends to
        spool.put(record(2))
        assert spool.count() == 1
        spool.drain()
        assert ids(store) == ["req-1", "req-2"]
    finally:
        spool.close()


def _write(folder: str, db: str, first: int, n: int) -> None:
    """A writer process: its own spool on the shared folder (its drainer never runs)."""
    s = SQLiteStore(Path(db))
    spool = Spool(Path(folder), s, every_s=3600)
    for i in range(first, first + n):
        spool.put(record(i))
    spool.close()
    s.close()


def test_writers_in_threads_and_processes_beside_a_drainer_lose_nothing(
    store: Downable, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    spool = Spool(folder, store, every_s=3600)
    store.flaky = 4  # one insert in four fails: the drainer keeps stopping and going on
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_write, args=(str(folder), str(tmp_path / "c.db"), 1000 * (p + 1), 60))
        for p in range(2)
    ]

    def put_60(t: int) -> None:
        for i in range(60):
            spool.put(record(t * 100 + i))

    threads = [threading.Thread(target=put_60, args=(t,)) for t in range(3)]
    writing = [*procs, *threads]
    try:
        for w in writing:
            w.start()
        for _ in range(10_000):  # drain while they write; bounded
            spool.drain()
            if not any(w.is_alive() for w in writing):
                break
        for w in writing:
            w.join(timeout=60)
        store.flaky = 0
        spool.drain()
        assert spool.drain() == 0
        assert spool.count() == 0
        got = ids(store)
        want = {f"req-{t * 100 + i}" for t in range(3) for i in range(60)}
        want |= {f"req-{1000 * (p + 1) + i}" for p in range(2) for i in range(60)}
        assert len(got) == len(want) == 300
        assert set(got) == want  # each once: none lost, none moved twice
    finally:
        spool.close()
        for p in procs:
            p.kill()


def test_where_the_spool_lives(store: Downable, tmp_path: Path) -> None:
    assert spool_dir(store, None) == tmp_path / "c.db-spool"  # beside the SQLite file
    assert spool_dir(object(), None).parent == Path("calguard-spool")  # type: ignore[arg-type]
    assert spool_dir(store, "/var/spool/cg") == Path("/var/spool/cg")


def test_a_rewrite_killed_before_its_rename_leaves_no_second_copy(
    store: Downable, tmp_path: Path
) -> None:
    """The temporary file of a rewrite killed before its rename is a copy of records the file
    still holds: removed by the next drain, not moved in a second time."""
    spool = Spool(tmp_path / "spool", store, every_s=3600)
    try:
        spool.put(record(1))
        (path,) = (tmp_path / "spool").glob("*.jsonl")
        orphan = path.with_name(f".{path.name}.dead.tmp")
        orphan.write_bytes(path.read_bytes())
        assert spool.count() == 1
        spool.drain()
        assert ids(store) == ["req-1"]
        assert list((tmp_path / "spool").iterdir()) == []
        assert spool.count() == 0
    finally:
        spool.close()


def test_a_full_spool_keeps_no_more_and_says_so(store: Downable, tmp_path: Path) -> None:
    """Past ``max_bytes`` a record is refused as a full disk refuses it (the stream is told);
    the ones kept stay whole, and room comes back as they go in."""
    spool = Spool(tmp_path / "spool", store, every_s=3600, max_bytes=600)
    try:
        kept = 0
        while spool._size() + 200 < 600:  # room for another (a record is about 150 bytes)
            spool.put(record(kept))
            kept += 1
        with pytest.raises(OSError, match="is full"):
            spool.put({**record(98), "response": "x" * 200})  # over what is left
        assert kept > 1
        assert spool.count() == kept
        spool.drain()
        spool.put(record(99))  # room again
        spool.drain()
        assert len(ids(store)) == kept + 1
    finally:
        spool.close()
