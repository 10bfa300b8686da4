"""What is PostgreSQL's own: the URL, a database that is down (a 503, never a 500) and back
(recovery without a restart), readers, ``calguard flags`` and ``calguard report`` against it.
The Protocol's behaviour is in test_contract.py, migrations in test_migrations.py. Each test
gets a fresh database and skips, saying why, when PostgreSQL is not reachable."""

from __future__ import annotations

import json
import re
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
