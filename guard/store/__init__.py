"""Stores by URL: ``sqlite:///path/to.db`` and ``postgresql://user@host/db`` (or ``postgres://``,
with ``pip install -e '.[postgres]'``) ship; add a scheme with :func:`register_store` or the
``calguard.stores`` entry point group (a callable taking the URL and returning a
:class:`~guard.store.base.Store`). Opening a store brings its schema up to date
(:mod:`guard.store.migrations`)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from guard.errors import ConfigError, StoreUnavailableError
from guard.store.base import FLAG_COLUMNS, State, Store
from guard.store.migrations import pending
from guard.store.sqlite import SQLiteStore

StoreFactory = Callable[[str], Store]

STORES: dict[str, StoreFactory] = {}


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Serve ``scheme://...`` store URLs with ``factory(url)``."""
    STORES[scheme] = factory


def _sqlite(url: str, *, must_exist: bool = False) -> Store:
    if not must_exist:
        return SQLiteStore(sqlite_path(url))
    # A reader never changes the schema: a proxy of the release before, still running on the
    # file, could not start again on a store migrated past what it knows.
    store = SQLiteStore(sqlite_path(url), migrate=False)
    try:
        version = store.schema_version()
        if version == 0 and not store.has_state_table():
            raise ConfigError(
                f"no store at {sqlite_path(url)} ({url}): nothing has been recorded there yet "
                "(no calguard tables); pass --store with the proxy's store"
            )
        pending(version, store.migrations, url)  # a newer store: raises, saying what to do
    except BaseException:
        store.close()
        raise
    return store


def sqlite_path(url: str) -> Path:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ConfigError(
            f"store {url!r}: a SQLite store is written sqlite:///path/to.db "
            "(sqlite:////abs/path.db for an absolute path)"
        )
    return Path(url[len(prefix) :])


def _postgres(url: str, *, must_exist: bool = False) -> Store:
    try:
        from guard.store.postgres import PostgresStore
    except ImportError as exc:
        raise ConfigError(
            f"store {redact(url)}: PostgreSQL needs psycopg: pip install -e '.[postgres]' "
            f"(from the checkout) ({exc})"
        ) from exc
    if not must_exist:
        return PostgresStore(url)
    store = PostgresStore(url, migrate=False)  # a reader never creates the tables
    try:
        version = store.schema_version()
    except BaseException:
        store.close()
        raise
    if version == 0:
        store.close()
        raise ConfigError(
            f"no store at {redact(url)}: nothing has been recorded there yet (no calguard "
            "tables); pass --store with the proxy's store, or run calguard migrate first"
        )
    if version > len(store.migrations):
        store.close()
        pending(version, store.migrations, store.url)  # raises, saying what to do
    return store


def redact(url: str) -> str:
    """``url`` with its passwords replaced, for messages, logs and the report: the one in
    ``user:password@`` (up to the last ``@`` before the path) and libpq's ``password=`` and
    ``sslpassword=`` query parameters."""
    url = re.sub(r"(://[^/@:?#]*):[^/?#]*@", r"\1:***@", url)
    return re.sub(r"([?&](?:ssl)?password=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)


register_store("sqlite", _sqlite)
register_store("postgresql", _postgres)
register_store("postgres", _postgres)


def open_store(url: str, *, must_exist: bool = False) -> Store:
    """The store a URL names; an unknown scheme, or a store that cannot be opened, stops
    start-up with a :class:`ConfigError` saying why. ``must_exist``: a SQLite file that is not
    there is an error too (readers such as ``calguard flags`` must not create one)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in STORES:
        for ep in entry_points(group="calguard.stores"):
            if ep.name == scheme:
                register_store(scheme, ep.load())
    if scheme not in STORES:
        raise ConfigError(
            f"store {redact(url)!r}: unknown store; use one of "
            + ", ".join(f"{s}://..." for s in sorted(STORES))
            + ("" if scheme else f" (a SQLite file is written sqlite:///{url})")
        )
    if scheme == "sqlite" and must_exist and not sqlite_path(url).is_file():
        raise ConfigError(
            f"no store at {sqlite_path(url)} ({url}): nothing has been recorded there yet; "
            "pass --store sqlite:///path/to/calguard.db or --config with the proxy's store"
        )
    try:
        if must_exist and STORES[scheme] in (_postgres, _sqlite):
            return STORES[scheme](url, must_exist=True)  # type: ignore[call-arg]
        return STORES[scheme](url)
    except (OSError, sqlite3.Error, StoreUnavailableError) as exc:
        raise ConfigError(f"store {redact(url)!r} cannot be opened: {exc}") from exc


__all__ = [
    "FLAG_COLUMNS",
    "STORES",
    "SQLiteStore",
    "State",
    "Store",
    "open_store",
    "redact",
    "register_store",
    "sqlite_path",
]
