"""What is PostgreSQL's own: the URL, a database that is down (a 503, never a 500) and back
(recovery without a restart), readers, ``calguard flags`` and ``calguard report`` against it.
The Protocol's behaviour is in test_contract.py, migrations in test_migrations.py. Each test
gets a fresh database and skips, saying why, when PostgreSQL is not reachable."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
import pytest

from guard.cli.main import main
from guard.errors import ConfigError, StoreUnavailableError
from guard.store import open_store
from guard.store.postgres import PostgresStore
from guard.testing.servers import free_port
from guard.testing.tcp_proxy import TcpProxy
from tests.guard.store.states import pride_question

T = TypeVar("T")


def flag_of(t: float, policies: list[str]) -> dict[str, Any]:
    return {"time": t, "request_id": f"r{t:g}", "route": "m", "model": "u", "key": "k",
            "action": "flag", "policies": policies}  # fmt: skip


def closed_port_url() -> str:
    return f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/db?timeout_s=0.5"


def via(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(pg_url)
    p = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    yield p
    p.stop()


def eventually(call: Callable[[], T], within_s: float = 60.0) -> T:
    """``call()``'s first answer that is not a StoreUnavailableError (bounded)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return call()
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_url_parameters_of_calguard_are_read_and_not_passed_to_libpq(pg_url: str) -> None:
    store = open_store(f"{pg_url}?timeout_s=2.5&pool_size=3&application_name=calguard-test")
    try:
        assert isinstance(store, PostgresStore)
        assert (store.timeout_s, store._pool.max_size) == (2.5, 3)
        store.ping()
    finally:
        store.close()
    with pytest.raises(ConfigError, match="timeout_s"):
        open_store(f"{pg_url}?timeout_s=soon")
    with pytest.raises(ConfigError, match="pool_size >= 1"):
        open_store(f"{pg_url}?pool_size=0")
    store = open_store(f"{pg_url}?history_points=3")
    try:
        assert store.history_points == 3  # type: ignore[attr-defined]
    finally:
        store.close()
    with pytest.raises(ConfigError, match="history_points >= 0"):
        open_store(f"{pg_url}?history_points=-1")


def test_calguard_report_reads_a_store_from_before_the_history(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader does not migrate a PostgreSQL store: on schema 1 the report has no history to
    draw, and says the rest (the prior now, the flags per key)."""
    with monkeypatch.context() as m:
        m.setattr(PostgresStore, "migrations", PostgresStore.migrations[:1])
        old = open_store(pg_url)
        old.history_points = 0  # type: ignore[attr-defined]  # that release kept no history
        for _ in range(6):
            old.update("k", pride_question)
        old.add_flag({"time": 1.0, "request_id": "r", "route": "m", "model": "u", "key": "k",
                      "action": "flag", "policies": ["pii"]})  # fmt: skip
        old.close()
    assert main(["report", "--store", pg_url, "--out-dir", str(tmp_path)]) == 0
    assert re.search(r"^k\s+pride\s+-\s+-\s+-\s+1\s+0$", capsys.readouterr().out, re.M)
    with psycopg.connect(pg_url) as conn:  # still schema 1: the reader changed nothing
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (1,)


def test_a_password_in_the_query_never_reaches_the_report(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """libpq also takes the password as ``?password=``: the report's page (shared with
    colleagues) and what calguard prints name the store without it."""
    url = f"{pg_url}?password=hunter2-query"  # trust authentication: accepted, unused
    assert main(["flags", "list", "--store", url]) == 2  # no calguard tables yet
    assert "hunter2" not in "".join(capsys.readouterr())
    store = open_store(pg_url)
    for _ in range(3):
        store.update("k", pride_question)
    store.close()
    assert main(["report", "--store", url, "--out-dir", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "password=***" in page
    assert "hunter2" not in page + "".join(capsys.readouterr())


def test_migrations_outlast_the_store_timeout_on_a_live_database(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schema 1 to 2 under a running replica: migration 2 indexes the flag log, so it waits for
    the flags being written (on a log of millions of records, building the index takes longer
    than ``timeout_s`` too), and a replica starting meanwhile waits for it. Neither gives up
    after ``timeout_s`` (they did: the upgrade could not be done with the default)."""
    with monkeypatch.context() as m:
        m.setattr(PostgresStore, "migrations", PostgresStore.migrations[:1])
        open_store(pg_url).close()
    url = f"{pg_url}?timeout_s=0.5"
    with psycopg.connect(pg_url) as old_replica:  # a flag insert in flight, not yet committed
        old_replica.execute(
            'INSERT INTO flags ("time", request_id, route, model, key, action, policies, '
            "record) VALUES (1, 'r', 'm', 'u', 'k', 'flag', ARRAY['pii'], '{}')"
        )
        results: list[Any] = []

        def start_replica() -> None:
            try:
                store = PostgresStore(url)
                results.append(store.migrated)
                store.close()
            except Exception as exc:
                results.append(exc)

        replicas = [threading.Thread(target=start_replica) for _ in range(2)]
        for t in replicas:
            t.start()
        deadline = time.monotonic() + 60
        with psycopg.connect(pg_url, autocommit=True) as watch:
            while any(t.is_alive() for t in replicas) and time.monotonic() < deadline:
                (waiting,) = watch.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> %s",
                    (old_replica.info.backend_pid,),
                ).fetchone() or (0,)
                if waiting == 2:  # one for the flag log, one for the migration lock
                    break
                time.sleep(0.05)
        time.sleep(1.5)  # three times timeout_s: both were still waiting
        old_replica.commit()
    for t in replicas:
        t.join(60)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(len(r.applied) for r in results) == [0, 1]  # applied once, by one of them
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM flags").fetchone() == (1,)


def test_postgres_scheme_is_an_alias(pg_url: str) -> None:
    store = open_store(pg_url.replace("postgresql://", "postgres://", 1))
    try:
        assert isinstance(store, PostgresStore)
    finally:
        store.close()


def test_a_database_that_is_not_there_stops_start_up_saying_why() -> None:
    url = closed_port_url()
    with pytest.raises(ConfigError, match=r"cannot be opened.*Connection refused") as info:
        open_store(url)
    assert "s3cret" not in info.value.message  # the password is never shown
    assert "postgres:***@" in info.value.message


def test_every_call_on_a_database_that_is_down_is_a_503() -> None:
    store = PostgresStore(closed_port_url(), migrate=False)  # as if it went down after start-up
    calls: list[Callable[[], Any]] = [
        lambda: store.update("k", lambda s: ({}, None)),
        lambda: store.add_flag(flag_of(1.0, ["pii"])),
        lambda: store.load("k"),
        store.flags,
        store.ping,
    ]
    try:
        for call in calls:
            with pytest.raises(StoreUnavailableError, match="unavailable") as info:
                call()
            assert info.value.status == 503
            assert "s3cret" not in info.value.message
    finally:
        store.close()


def test_the_store_recovers_by_itself_when_the_database_is_back(
    pg_url: str, proxy: TcpProxy
) -> None:
    store = open_store(via(proxy, pg_url) + "?timeout_s=1")
    try:
        store.update("k", lambda s: ({"n": 1}, None))
        proxy.stop()  # the database goes away: every pooled connection is cut
        with pytest.raises(StoreUnavailableError):
            store.update("k", lambda s: ({"n": 99}, None))
        with pytest.raises(StoreUnavailableError):
            store.add_flag(flag_of(1.0, ["pii"]))
        proxy.start()  # and comes back on the same address
        eventually(store.ping)
        assert store.update("k", lambda s: ({"n": (s or {})["n"] + 1}, "ok")) == "ok"
        assert store.load("k") == {"n": 2}  # the update that failed changed nothing
        assert store.add_flag(flag_of(2.0, ["pii"])) > 0
        assert [f["time"] for f in store.flags()] == [2.0]  # the refused flag is not there
    finally:
        store.close()


def test_a_reader_never_creates_the_tables(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="nothing has been recorded there yet"):
        open_store(pg_url, must_exist=True)
    assert main(["flags", "list", "--store", pg_url]) == 2
    assert "run calguard migrate first" in capsys.readouterr().err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('flags')").fetchone() == (None,)


def test_calguard_flags_reads_a_postgres_store(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(pg_url)
    try:
        first = store.add_flag({**flag_of(time.time() - 10, ["pii"]), "verdicts": [
            {"policy": "pii", "reason": "an email address"}]})  # fmt: skip
        store.add_flag(flag_of(time.time(), ["denylist"]))
    finally:
        store.close()
    capsys.readouterr()
    assert main(["flags", "list", "--store", pg_url, "--policy", "pii"]) == 0
    out = capsys.readouterr()
    assert "an email address" in out.out
    assert "1 record(s)" in out.err
    assert main(["flags", "show", str(first), "--store", pg_url]) == 0
    assert json.loads(capsys.readouterr().out)["policies"] == ["pii"]
    assert main(["flags", "export", "--format", "jsonl", "--store", pg_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["policies"] for x in lines] == [["pii"], ["denylist"]]


def test_a_flag_log_cursor_never_skips_a_record_committed_late(pg_url: str) -> None:
    """Records are read oldest first by id, and a reader follows the log with ``after`` the
    last id it saw. PostgreSQL takes an id when a row is inserted, not when it is committed: a
    record whose insert is slow (here a trigger holds it) got an id below one committed before
    it, and a reader that had seen the later one never read it. Now a record is committed
    before the next one takes its id."""
    store = PostgresStore(f"{pg_url}?timeout_s=30")
    hold = 727001  # an advisory lock the test holds while the slow record is inserted
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "CREATE FUNCTION held() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.request_id = 'slow' THEN PERFORM pg_advisory_lock_shared({hold}); "
            f"PERFORM pg_advisory_unlock_shared({hold}); END IF; RETURN NEW; END $$"
        )
        admin.execute(
            "CREATE TRIGGER held BEFORE INSERT ON flags FOR EACH ROW EXECUTE FUNCTION held()"
        )
        first = store.add_flag(flag_of(1.0, ["pii"]))
        admin.execute("SELECT pg_advisory_lock(%s)", (hold,))
        done: dict[str, int] = {}
        slow = threading.Thread(
            target=lambda: done.update(slow=store.add_flag({**flag_of(2.0, ["pii"]),
                                                             "request_id": "slow"})))  # fmt: skip
        fast = threading.Thread(
            target=lambda: done.update(fast=store.add_flag(flag_of(3.0, ["pii"])))
        )
        slow.start()
        waiting(admin, "slow record inserting", "SELECT count(*) FROM pg_locks WHERE NOT granted "
                "AND locktype = 'advisory' AND objid = %s", hold)  # fmt: skip
        fast.start()
        # The fast record either is committed (ids out of order) or waits for the slow one.
        deadline = time.monotonic() + 30
        while (
            "fast" not in done
            and not admin.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND objid <> %s", (hold,)
            ).fetchone()[0]
        ):
            assert time.monotonic() < deadline, "the fast record neither committed nor waited"
            time.sleep(0.01)
        seen = [f["id"] for f in store.flags(after=first)]  # a reader following the log
        admin.execute("SELECT pg_advisory_unlock(%s)", (hold,))
        slow.join(30)
        fast.join(30)
        seen += [f["id"] for f in store.flags(after=max(seen, default=first))]
    store.close()
    assert sorted(seen) == sorted([done["slow"], done["fast"]])  # none skipped, none twice


def waiting(admin: psycopg.Connection[Any], what: str, sql: str, *args: Any) -> None:
    """Poll ``sql`` (a count) until it is positive; bounded at 30 s."""
    deadline = time.monotonic() + 30
    while not admin.execute(sql, args).fetchone()[0]:  # type: ignore[index]
        assert time.monotonic() < deadline, f"never saw: {what}"
        time.sleep(0.01)
