"""The spool's files: a write that fails part way (the disk full) leaves nothing behind that could
spoil the next record; the records, prompts among them, are readable by their owner only."""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.errors import StoreUnavailableError
from guard.store.spool import Spool
from guard.store.sqlite import SQLiteStore


def record(n: int, size: int = 0) -> dict[str, Any]:
    return {"time": 1000.0 + n, "request_id": f"req-{n}", "route": "m", "model": "m",
            "key": None, "action": "flag", "policies": ["pii"],
            "response": {"n": n, "text": "x" * size}}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "c.db")
    yield s
    s.close()


def _short_write(folder: str, db: str) -> None:
    """A writer whose second record meets a full disk part way (a file-size limit: the write
    stops short, then fails), and whose third goes in once there is room again."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not death, past the limit
    s = SQLiteStore(Path(db))
    spool = Spool(Path(folder), s, every_s=3600)
    spool.put(record(1))
    (path,) = Path(folder).glob("*.jsonl")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 40, hard))
    try:
        spool.put(record(2, size=10_000))
    except OSError:
        refused = True  # the caller is told: the stream ends in the store's error
    else:
        refused = False
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    spool.put(record(3))  # kept: the stream ends normally
    spool.close()
    s.close()
    os._exit(0 if refused else 3)


def test_a_write_that_fails_part_way_spoils_no_later_record(
    store: SQLiteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_short_write, args=(str(folder), str(tmp_path / "w.db")))
    p.start()
    p.join(timeout=60)
    assert p.exitcode == 0  # the second record was refused, the third kept
    spool = Spool(folder, store, every_s=3600)
    try:
        spool.drain()
        assert [f["request_id"] for f in store.flags()] == ["req-1", "req-3"]
    finally:
        spool.close()


def test_spooled_records_are_readable_by_their_owner_only(
    store: SQLiteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    old = os.umask(0o022)  # a usual umask: what is made is world-readable unless said
    try:
        spool = Spool(folder, store, every_s=3600)
        spool.put(record(1))
    finally:
        os.umask(old)
    try:
        (path,) = folder.glob("*.jsonl")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        spool.close()


class _TakesOne:
    """A store that takes one record, then is down."""

    def __init__(self) -> None:
        self.took = 0

    def add_flag(self, flag: dict[str, Any]) -> int:
        if self.took:
            raise StoreUnavailableError("down")
        self.took += 1
        return 1


def _drain_on_a_full_disk(folder: str) -> None:
    """A drainer that moves one record, then cannot write the file of the rest back whole."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    spool = Spool(Path(folder), _TakesOne(), every_s=3600)  # type: ignore[arg-type]
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100, hard))
    try:
        spool.drain()
    except OSError:
        os._exit(0)
    os._exit(3)


def test_a_drain_that_cannot_write_the_rest_back_loses_none_of_it(
    store: SQLiteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    spool = Spool(folder, store, every_s=3600)
    try:
        for n in range(20):
            spool.put(record(n))
        ctx = multiprocessing.get_context("spawn")
        p = ctx.Process(target=_drain_on_a_full_disk, args=(str(folder),))
        p.start()
        p.join(timeout=60)
        assert p.exitcode == 0  # the rewrite failed
        spool.drain()
        got = {f["request_id"] for f in store.flags()}
        assert got >= {f"req-{n}" for n in range(1, 20)}  # the first at least once: maybe twice
    finally:
        spool.close()


class _Refuses(SQLiteStore):
    """A store that refuses one record (not down: that record itself)."""

    def add_flag(self, flag: dict[str, Any]) -> int:
        if flag["request_id"] == "req-1":
            raise ValueError("refused")
        return super().add_flag(flag)


def test_a_refused_record_is_kept_and_said_once_not_at_every_drain(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _Refuses(tmp_path / "r.db")
    spool = Spool(tmp_path / "spool", store, every_s=3600)
    try:
        spool.put(record(1))
        spool.put(record(2))
        with caplog.at_level(logging.INFO, logger="calguard"):
            for _ in range(5):  # ten seconds of the drainer's thread
                spool.drain()
        assert [f["request_id"] for f in store.flags()] == ["req-2"]
        assert spool.count() == 1  # kept, not dropped
        said = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(said) == 1, [r.getMessage() for r in said]
    finally:
        spool.close()
        store.close()


class _DiesAtTheTenth(SQLiteStore):
    """A store whose process is killed (SIGKILL) as it takes its tenth record."""

    def add_flag(self, flag: dict[str, Any]) -> int:
        if self.count_flags() == 9:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().add_flag(flag)


def _drain_and_die(folder: str, db: str) -> None:
    s = _DiesAtTheTenth(Path(db))
    Spool(Path(folder), s, every_s=3600).drain()


def test_a_drainer_killed_mid_pass_moves_at_most_one_record_twice(tmp_path: Path) -> None:
    folder, db = tmp_path / "spool", tmp_path / "k.db"
    store = SQLiteStore(db)
    spool = Spool(folder, store, every_s=3600)
    try:
        for n in range(20):
            spool.put(record(n))
        ctx = multiprocessing.get_context("spawn")
        p = ctx.Process(target=_drain_and_die, args=(str(folder), str(db)))
        p.start()
        p.join(timeout=60)
        assert p.exitcode == -signal.SIGKILL
        assert store.count_flags() == 9
        spool.drain()
        got = [f["request_id"] for f in store.flags()]
        assert set(got) == {f"req-{n}" for n in range(20)}  # none lost
        assert len(got) <= 21  # at most one twice
    finally:
        spool.close()
        store.close()
