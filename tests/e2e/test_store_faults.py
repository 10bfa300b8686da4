"""The store failing under a running proxy, through the real ``openai`` client: a flagged reply is
never sent unrecorded (a 503 instead, never a 500 and never a hang), ``/readyz`` says what is
down, and calguard recovers by itself when the store is back. PostgreSQL tests get a fresh
database and skip, saying why, when PostgreSQL is not reachable."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from guard.checks import OFF_LOOP_BYTES
from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.store import SQLiteStore, open_store
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread
from guard.testing.tcp_proxy import TcpProxy

FLAGGED = [{"type": "max_length", "params": {"max_chars": 12}, "action": "flag", "on": "response"}]
SPAN = [{"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"}]
LONG_HI = [{"role": "user", "content": "hello there"}]  # its echo is over 12 characters


@pytest.fixture
def upstream() -> Iterator[str]:
    with serve_in_thread(create_fake_upstream(FakeUpstreamState(SimulatedResponder()))) as url:
        yield f"{url}/v1"


def client(base: str) -> openai.OpenAI:
    # The timeout only bounds the test: calguard must answer well within it.
    return openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0, timeout=60)


def flagged_settings(upstream: str, store: str) -> Settings:
    return Settings(upstream=upstream, store=store, default_route=RouteConfig(policies=FLAGGED))  # type: ignore[arg-type]


def wait_ready(base: str, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while httpx.get(f"{base}/readyz", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, f"calguard did not recover within {within_s:g} s"
        time.sleep(0.1)


def status_of(c: openai.OpenAI) -> int:
    """200, or 503 for a store that cannot record the flag (any other answer fails)."""
    try:
        c.chat.completions.create(model="m", messages=LONG_HI)
    except openai.APIStatusError as exc:
        body: Any = exc.body
        return 503 if exc.status_code == 503 and body["code"] == "store_unavailable" else -1
    return 200


# -- PostgreSQL -----------------------------------------------------------------------------------


def test_a_silent_database_connection_is_cut_and_calguard_recovers(
    upstream: str, pg_url: str
) -> None:
    """The connections to PostgreSQL go silent (a network that drops packets, a frozen server,
    a failed-over address): no answer, no reset, so the database's own ``statement_timeout``
    never fires. Before, each store call on such a connection waited forever: the request hung,
    its worker thread and pooled connection were never given back, and once the default thread
    pool was full of them no store call ran again, the database back or not. Now each call is
    cut after twice ``timeout_s``: a 503, and the next request is served on a fresh connection."""
    parts = urlsplit(pg_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    via = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    try:
        with (
            serve_in_thread(create_app(flagged_settings(upstream, f"{via}?timeout_s=1"))) as base,
            client(base) as c,
        ):
            assert c.chat.completions.create(model="m", messages=LONG_HI).choices
            proxy.blackhole()  # the pooled connection goes silent; new ones get through
            # More requests than the default thread pool's workers on 2 cores (6).
            statuses = [status_of(c) for _ in range(8)]
            assert set(statuses) <= {200, 503}, statuses
            answered = statuses.count(200)
            wait_ready(base)
            assert c.chat.completions.create(model="m", messages=LONG_HI).choices
    finally:
        proxy.stop()
    store = open_store(pg_url)
    try:
        assert store.count_flags() == 2 + answered  # every reply sent has its record
    finally:
        store.close()


def _admin(pg_url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute("SET default_transaction_read_only = off")
        for statement in statements:
            admin.execute(statement)


def _terminate(name: str) -> str:
    return (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        pytest.param(  # a failover that left calguard on a standby: every write refused
            "ALTER DATABASE {db} SET default_transaction_read_only = on",
            "ALTER DATABASE {db} RESET default_transaction_read_only",
            id="read-only",
        ),
        pytest.param(  # the flag log's table gone (renamed by hand, a bad restore)
            "ALTER TABLE flags RENAME TO flags_aside",
            "ALTER TABLE flags_aside RENAME TO flags",
            id="no-flags-table",
        ),
    ],
)
def test_a_database_that_refuses_writes_is_a_503_and_not_ready(
    upstream: str, pg_url: str, broken: str, fixed: str
) -> None:
    """Before: the flagged request was a 500 (``internal error (ReadOnlySqlTransaction)``,
    ``UndefinedTable``), and ``/readyz`` said ready, so a load balancer kept sending traffic."""
    name = urlsplit(pg_url).path.lstrip("/")
    with (
        serve_in_thread(create_app(flagged_settings(upstream, f"{pg_url}?timeout_s=1"))) as base,
        client(base) as c,
    ):
        assert status_of(c) == 200
        _admin(pg_url, broken.format(db=f'"{name}"'), _terminate(name))
        assert status_of(c) == 503
        ready = httpx.get(f"{base}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"]["store"]["ok"] is False
        short = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert short.choices[0].message.content == "echo: x"  # nothing to record: it flows
        _admin(pg_url, fixed.format(db=f'"{name}"'), _terminate(name))
        wait_ready(base)
        assert status_of(c) == 200
    store = open_store(pg_url)
    try:
        assert store.count_flags() == 2  # the refused one is not there
    finally:
        store.close()


# -- SQLite ---------------------------------------------------------------------------------------


def _records(path: Path) -> int:
    """The flag records in the file at ``path`` now (what a restart, or another worker, reads)."""
    if not path.exists():
        return 0
    store = open_store(f"sqlite:///{path}", must_exist=True)
    try:
        return store.count_flags()
    finally:
        store.close()


@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_store_file_removed_under_the_proxy_never_takes_a_record_with_it(
    upstream: str, tmp_path: Path, what: str
) -> None:
    """The SQLite file (or its directory) is removed while calguard runs: a clean-up job, an
    operator starting afresh, a volume remounted. Before, calguard went on writing flag records
    into the removed file through its open connections, answered 200 and said ready: every
    record from then on was gone at the next restart, and another worker wrote to a new file.
    Now a flagged reply is sent only once its record is in the file at the store's path: the
    file is made again (as at start-up) where its directory is there, a 503 and not ready where
    it is not, until it is back."""
    folder = tmp_path / "store"
    path = folder / "c.db"
    settings = flagged_settings(upstream, f"sqlite:///{path}")
    with serve_in_thread(create_app(settings)) as base, client(base) as c:
        assert status_of(c) == 200
        assert _records(path) == 1
        if what == "file":
            for p in folder.iterdir():
                p.unlink()
        else:
            shutil.rmtree(folder)
            assert status_of(c) == 503
            assert httpx.get(f"{base}/readyz", timeout=30).status_code == 503
            folder.mkdir()
        wait_ready(base)
        statuses = [status_of(c) for _ in range(4)]
        assert statuses == [200] * 4
        assert _records(path) == 4  # each reply sent has its record in the file at the path
    store = open_store(f"sqlite:///{path}", must_exist=True)
    try:  # ids go on from the removed file's: a reader following the log by id misses none
        assert [f["id"] for f in store.flags()] == [2, 3, 4, 5]
    finally:
        store.close()


def test_a_sqlite_file_without_its_flag_log_table_is_not_ready(
    upstream: str, tmp_path: Path
) -> None:
    """The flags table gone (renamed by hand, a bad restore): each flagged reply is a 503, and
    ``/readyz`` says so (before, it asked for the calibration table only and said ready)."""
    path = tmp_path / "c.db"
    with (
        serve_in_thread(create_app(flagged_settings(upstream, f"sqlite:///{path}"))) as base,
        client(base) as c,
    ):
        assert status_of(c) == 200
        with sqlite3.connect(path) as db:
            db.execute("ALTER TABLE flags RENAME TO flags_aside")
        assert status_of(c) == 503
        ready = httpx.get(f"{base}/readyz", timeout=30)
        assert ready.status_code == 503
        assert "flags" in ready.json()["checks"]["store"]["error"]
        with sqlite3.connect(path) as db:
            db.execute("ALTER TABLE flags_aside RENAME TO flags")
        wait_ready(base)
        assert status_of(c) == 200
    assert _records(path) == 2


class HeldStore:
    """A store whose flag writes wait (as on a SQLite file another process holds locked, or a
    database that is slow) until the test releases them."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.entered = 0
        self._lock = threading.Lock()

    def add_flag(self, flag: dict[str, Any]) -> int:
        with self._lock:
            self.entered += 1
        self.release.wait(120)  # bounded: the test releases it
        return self.inner.add_flag(flag)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_store_calls_that_wait_do_not_take_the_threads_of_policy_checks(
    upstream: str, tmp_path: Path
) -> None:
    """Store calls ran in asyncio's default thread pool (6 threads on 2 cores), the one where a
    large body's policy checks run too: while as many flag writes as it has threads waited on
    the store, a large request that needed no store at all waited for them too (and ``/readyz``
    could not ask the store). Store calls now have threads of their own."""
    held = HeldStore(SQLiteStore(tmp_path / "c.db"))
    waiting = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default pool size
    settings = Settings(upstream=upstream, store="sqlite:///unused.db",
                        default_route=RouteConfig(policies=FLAGGED + SPAN))  # type: ignore[arg-type]  # fmt: skip
    large = "plain words " * (OFF_LOOP_BYTES // 12 + 1)  # checked in a worker thread
    try:
        with (
            serve_in_thread(create_app(settings, store=held)) as base,  # type: ignore[arg-type]
            client(base) as c,
            ThreadPoolExecutor(waiting) as senders,
        ):
            flagged = [senders.submit(status_of, c) for _ in range(waiting)]
            deadline = time.monotonic() + 60
            while held.entered < waiting:
                assert time.monotonic() < deadline, f"{held.entered} flag writes began"
                time.sleep(0.01)
            # Every default thread would now be held: this one needs a thread, not the store
            # (its echo is flagged by max_length: the route answers it after the release).
            r = httpx.post(f"{base}/v1/embeddings", json={"model": "m", "input": large},
                           timeout=60)  # fmt: skip
            assert r.status_code == 200, r.text
            held.release.set()
            assert [f.result(timeout=60) for f in flagged] == [200] * waiting
    finally:
        held.release.set()
        held.inner.close()


def test_a_sqlite_file_locked_by_another_writer_is_not_ready(upstream: str, tmp_path: Path) -> None:
    """Another process holds the file's write lock (a long ``BEGIN IMMEDIATE``, a ``VACUUM``):
    every calibrated question and flag record waits out the store's timeout and is a 503, while
    reads still answer (WAL). ``/readyz`` asked a read only and said ready; it now asks for the
    write lock too, waiting at most a second."""
    path = tmp_path / "c.db"
    with serve_in_thread(create_app(flagged_settings(upstream, f"sqlite:///{path}"))) as base:
        assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            ready = httpx.get(f"{base}/readyz", timeout=30)
            assert ready.status_code == 503
            assert "locked" in ready.json()["checks"]["store"]["error"]
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200


def test_a_sqlite_file_busy_with_writes_that_commit_is_ready(upstream: str, tmp_path: Path) -> None:
    """Large flag records written one after another hold the write lock most of the time (each
    insert of a 20 MB record takes a while), yet every write goes through. ``/readyz`` waited a
    second for the lock and said not ready (5 of 13 pings failed with 4 writers of 20 MB
    records, no write failing): a load balancer would pull a replica that works. Now a lock
    that stays busy while writes commit is ready; one held without a commit is not (the test
    above)."""
    path = tmp_path / "w.db"
    with serve_in_thread(create_app(flagged_settings(upstream, f"sqlite:///{path}"))) as base:
        assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200
        stop, holding = threading.Event(), threading.Event()

        def long_writes() -> None:
            writer = sqlite3.connect(path, isolation_level=None, timeout=30)
            writer.execute("CREATE TABLE scratch (x)")
            while not stop.is_set():
                writer.execute("BEGIN IMMEDIATE")
                writer.execute("INSERT INTO scratch VALUES (1)")
                holding.set()
                stop.wait(0.2)  # a long insert: the lock held, then the write commits
                writer.execute("COMMIT")
            writer.close()

        thread = threading.Thread(target=long_writes)
        thread.start()
        try:
            assert holding.wait(30)
            said = [httpx.get(f"{base}/readyz", timeout=30) for _ in range(3)]
        finally:
            stop.set()
            thread.join()
        assert [r.status_code for r in said] == [200, 200, 200], [r.text for r in said]
