"""Shared fixtures. Recorded LLM outputs are read from ../shared/data, never copied here."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import os
import socket
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from guard.evaluation.recorded import McqRecords, load_recorded
from guard.testing.nginx import nginx_binary
from guard.testing.postgres_server import PostgresUnavailableError, PrivatePostgres

RECORDED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "recorded"


def _loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like stay on this machine
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name that would need a lookup beyond this machine


class NetworkBlockedError(RuntimeError):
    pass


@pytest.fixture(autouse=True, scope="session")
def _only_loopback() -> Iterator[None]:
    """Any connection beyond 127.0.0.0/8 and ::1 fails the test that makes it."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(address: Any) -> None:
        if not _loopback(address):
            raise NetworkBlockedError(f"tests may only connect to loopback, not {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]


def _recorded(name: str = "") -> Path:
    path = RECORDED / name
    if not path.exists():
        pytest.skip(f"{path} not found: shared/data is not beside the checkout")
    return path


@pytest.fixture(scope="session")
def recorded() -> Callable[[str], Path]:
    """``recorded("file.jsonl")`` is that recording's path; the test skips, saying why, when it
    is absent. ``recorded("")`` is the folder."""
    return _recorded


@pytest.fixture(scope="session")
def recorded_dir(recorded: Callable[[str], Path]) -> Path:
    return recorded("")


@pytest.fixture
def settled_gc() -> None:
    """Finalise now what earlier tests left behind (litellm leaves its event loop open as the
    thread's current loop). Otherwise the next ``asyncio.run`` drops it, and the garbage
    collector finalises it at some later allocation: inside an ``ast.parse`` on CPython 3.11,
    its warning gets formatted by pytest, which parses again (to place the carets), and the
    outer parse fails with "SystemError: AST constructor recursion depth mismatch". inspect_ai
    parses sources when it loads a task file or a module, so its tests ask for this first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        asyncio.set_event_loop(None)
        gc.collect()


@pytest.fixture(scope="session")
def arc(recorded: Callable[[str], Path]) -> McqRecords:
    """The recorded ARC-Challenge outputs of Llama-2-13b-chat (skips when absent)."""
    rec = load_recorded(recorded("arc_0s_Llama-2-13b-chat-hf.jsonl"))
    assert isinstance(rec, McqRecords)
    return rec


# -- PostgreSQL: a fresh database per test, or a skip that says why -----------------------------

PG_ADMIN = os.environ.get("CALGUARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """The admin URL of the test PostgreSQL (``CALGUARD_TEST_POSTGRES``, default the local
    server); the test skips, saying why, when it is not reachable or psycopg is missing."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed: pip install -e '.[dev]' (or -e '.[postgres]')")
    host = urlsplit(PG_ADMIN).hostname or ""
    if not _loopback((host, 0)):
        pytest.fail(f"CALGUARD_TEST_POSTGRES must be on loopback, not {host!r}")
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN} ({str(exc).strip()[:200]})")
    return PG_ADMIN


@contextlib.contextmanager
def fresh_database(pg_admin: str) -> Iterator[str]:
    """A freshly created, uniquely named database's URL, dropped afterwards."""
    import psycopg

    name = f"calguard_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_admin, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(pg_admin)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(pg_admin, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A freshly created, uniquely named database's URL, dropped after the test."""
    with fresh_database(pg_admin) as url:
        yield url


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server (``guard.testing.postgres_server``) that the test may stop
    and start: never the machine's own cluster. Skips, saying why, where it cannot run."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install -e '.[dev]' (or -e '.[postgres]')")
    try:
        pg = PrivatePostgres()
    except PostgresUnavailableError as exc:
        pytest.skip(f"no private PostgreSQL server: {exc}")
    try:
        pg.init().start()
    except PostgresUnavailableError as exc:
        pg.close()
        pytest.skip(f"no private PostgreSQL server: {exc}")
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    """The nginx executable; the test skips, saying why, where it is not installed."""
    found = nginx_binary()
    if found is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx; .ci/run does it)")
    return found
