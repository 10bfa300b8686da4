"""A PostgreSQL store (``postgresql://user@host/db``): several calguard replicas on one database.

Same :class:`guard.store.base.Store` behaviour as SQLite, over a ``psycopg_pool`` connection pool
(``pip install -e '.[postgres]'``). ``update`` is one transaction: insert the key's row if it
is missing, lock it with ``SELECT ... FOR UPDATE``, run ``fn``, write; so replicas on any host never
lose an update. A history point that is due (:mod:`guard.store.history`) goes in the same
statement as the state's write: it costs no round trip. ``add_flag`` commits before it returns.
The schema is versioned (:data:`MIGRATIONS`, applied under an advisory lock when the store is
opened).

Down or slow: every call is bounded by ``timeout_s`` (waiting for a pooled connection, connecting,
each statement) and psycopg's operational errors become
:class:`~guard.errors.StoreUnavailableError` (a 503), so the request path never imports psycopg.
The pool checks each connection before lending it and reconnects in the background, so calguard
recovers by itself when the database is back.

Query parameters of the URL that calguard reads (and does not pass to libpq): ``timeout_s``
(default 5), ``pool_size`` (most connections per process, default 8) and ``history_points``
(most history points kept per key, default 64; 0 writes none).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from guard.errors import ConfigError, StoreUnavailableError
from guard.store import redact
from guard.store.base import FLAG_COLUMNS, State
from guard.store.deadline import Armed, Watchdog
from guard.store.history import HISTORY_POINTS, HistoryPoint, point_of, stride
from guard.store.migrations import Migration, MigrationResult, log_result, pending

T = TypeVar("T")

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "calibration state and the flag log",
        (
            # state NULL: a row inserted by update() to be locked before its first state.
            """CREATE TABLE IF NOT EXISTS calibration_state (
                key TEXT PRIMARY KEY,
                state TEXT,
                version BIGINT NOT NULL DEFAULT 0,
                updated TIMESTAMPTZ NOT NULL DEFAULT now()
            )""",
            """CREATE TABLE IF NOT EXISTS flags (
                id BIGSERIAL PRIMARY KEY,
                "time" DOUBLE PRECISION NOT NULL,
                request_id TEXT NOT NULL,
                route TEXT NOT NULL,
                model TEXT NOT NULL,
                key TEXT,
                action TEXT NOT NULL,
                policies TEXT[] NOT NULL,
                record TEXT NOT NULL
            )""",
            'CREATE INDEX IF NOT EXISTS flags_time ON flags ("time")',
        ),
    ),
    Migration(
        2,
        "the history of each key's prior; flags counted per calibration key",
        (
            """CREATE TABLE calibration_history (
                key TEXT NOT NULL,
                version BIGINT NOT NULL,
                "time" DOUBLE PRECISION NOT NULL,
                point TEXT NOT NULL,
                PRIMARY KEY (key, version)
            )""",
            "CREATE INDEX flags_key ON flags (key, action)",
        ),
    ),
)

# The state's write, the points off the new stride dropped and the new point, in one statement
# (data-modifying CTEs run to completion whether or not the main statement reads them).
_UPDATE_WITH_POINT = """WITH thin AS (
    DELETE FROM calibration_history WHERE key = %(key)s AND version %% %(stride)s <> 0
), written AS (
    UPDATE calibration_state SET state = %(state)s, version = version + 1, updated = now()
    WHERE key = %(key)s
)
INSERT INTO calibration_history (key, version, "time", point)
VALUES (%(key)s, %(version)s, %(time)s, %(point)s)
ON CONFLICT (key, version) DO UPDATE SET "time" = excluded."time", point = excluded.point"""

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied TIMESTAMPTZ NOT NULL DEFAULT now()
)"""
MIGRATION_LOCK = 0x63616C67_75617264  # "calguard": the advisory lock migrations hold
FLAG_LOCK = 0x63616C67_666C6167  # "calgflag": held from a flag's id to its commit

_OWN_PARAMS = ("timeout_s", "pool_size", "history_points")


def _split(url: str) -> tuple[str, dict[str, str]]:
    """(the URL for libpq, calguard's own query parameters)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in query if k in _OWN_PARAMS}
    rest = urlencode([(k, v) for k, v in query if k not in _OWN_PARAMS])
    return urlunsplit(parts._replace(query=rest)), own


def _text(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL; the full record (JSON-escaped) keeps the original."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


class PostgresStore:
    """PostgreSQL-backed store. Thread-safe: each call borrows a pooled connection."""

    migrations: tuple[Migration, ...] = MIGRATIONS

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float | None = None,
        pool_size: int | None = None,
        migrate: bool = True,
        history_points: int | None = None,
    ) -> None:
        """``migrate``: wait for the database (up to ``timeout_s``) and bring the schema up to
        date now, as start-up does; False opens the pool without waiting (it connects when
        first used)."""
        conninfo, own = _split(url)
        self.url = redact(url)
        self.where = redact(conninfo)  # the database, whatever calguard's own parameters
        try:
            self.timeout_s = float(timeout_s or own.get("timeout_s") or 5.0)
            size = int(pool_size or own.get("pool_size") or 8)
            points = own.get("history_points", HISTORY_POINTS)
            self.history_points = int(points if history_points is None else history_points)
        except ValueError as exc:
            raise ConfigError(
                f"store {self.url}: timeout_s / pool_size / history_points: {exc}"
            ) from exc
        if self.timeout_s <= 0 or size < 1 or self.history_points < 0:
            raise ConfigError(
                f"store {self.url}: timeout_s must be > 0, pool_size >= 1, history_points >= 0"
            )
        self._connect_timeout = max(2, math.ceil(self.timeout_s))  # libpq's least is 2 s
        # The server bounds each statement; a connection that goes silent is cut client-side.
        self._bound_s = 2 * self.timeout_s
        self._watchdog = Watchdog("calguard-store-watchdog")
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=size,
            open=False,
            timeout=self.timeout_s,
            # A broken connection is replaced in the background; after this long the slot is
            # given up and the next request starts a fresh attempt (recovery without restart).
            reconnect_timeout=max(2 * self.timeout_s, 5.0),
            check=self._check,
            configure=self._configure,
            kwargs={"autocommit": True, "connect_timeout": self._connect_timeout},
            name="calguard-store",
        )
        try:
            try:
                if migrate:  # fail fast, with libpq's reason (the pool only says "timeout")
                    psycopg.connect(conninfo, connect_timeout=self._connect_timeout).close()
                self._pool.open(wait=migrate, timeout=self.timeout_s)
            except psycopg.OperationalError as exc:
                raise StoreUnavailableError(
                    f"no connection to the database ({str(exc).strip()}): is it "
                    "running, and the URL (host, port, user, database) right?"
                ) from exc
            self.migrated = self.migrate() if migrate else None  # what opening it applied
        except BaseException:
            self._pool.close(timeout=0)
            self._watchdog.close()
            raise

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        ms = int(self.timeout_s * 1000)
        with self._watchdog.bound(conn.fileno(), self._bound_s):
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false), "
                "set_config('lock_timeout', %s, false), "
                "set_config('idle_in_transaction_session_timeout', %s, false)",
                (str(ms), str(ms), str(10 * ms)),
            )

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's check before lending a connection, bounded as every call is."""
        with self._watchdog.bound(conn.fileno(), self._bound_s):
            ConnectionPool.check_connection(conn)

    @contextmanager
    def _conn(self, *, bounded: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; the database down, slow, refusing or silent past twice
        ``timeout_s`` (the connection is then cut) is a 503."""
        call = Armed()
        try:
            with (
                self._pool.connection() as conn,
                self._watchdog.bound(conn.fileno(), self._bound_s if bounded else None) as call,
            ):
                yield conn
        except psycopg.Error as exc:  # down, cut, read-only (a standby), a table gone: a 503
            # The server's first line only: its DETAIL may quote the row (the record's text).
            said = getattr(exc.diag, "message_primary", None) or str(exc).strip() or "no answer"
            said = said.splitlines()[0]
            if call.cut:
                said = f"no answer within {self._bound_s:g} s: connection cut"
            raise StoreUnavailableError(
                f"the store {self.url} is unavailable ({type(exc).__name__}: {said}); retry shortly"
            ) from exc

    def _read(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        with self._conn() as conn:
            return conn.execute(sql, args).fetchall()

    # -- schema --------------------------------------------------------------------------------

    def migrate(self) -> MigrationResult:
        """Apply the missing migrations in one transaction holding an advisory lock: replicas
        starting at once apply each migration exactly once. Without ``timeout_s``: a migration
        runs as long as it needs (an index on a flag log of millions of records takes seconds,
        waiting for flags being written first), and a replica starting meanwhile waits for it."""
        with self._conn(bounded=False) as conn, conn.transaction():
            conn.execute(
                "SELECT set_config('statement_timeout', '0', true), "
                "set_config('lock_timeout', '0', true)"
            )
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(_VERSION_TABLE)
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            before = int(row[0]) if row else 0
            todo = pending(before, self.migrations, self.url)
            for m in todo:
                for statement in m.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, description) VALUES (%s, %s)",
                    (m.version, m.description),
                )
        result = MigrationResult(before, max(before, len(self.migrations)), tuple(todo))
        log_result(self.url, result)
        return result

    def schema_version(self) -> int:
        """The last migration applied (0: none)."""
        rows = self._read("SELECT to_regclass('schema_version') IS NOT NULL")
        if not rows[0][0]:
            return 0
        return int(self._read("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])

    # -- calibration state ---------------------------------------------------------------------

    def load(self, key: str) -> State | None:
        rows = self._read("SELECT state FROM calibration_state WHERE key = %s", (key,))
        return dict(json.loads(rows[0][0])) if rows and rows[0][0] is not None else None

    def update(self, key: str, fn: Callable[[State | None], tuple[State, T]]) -> T:
        """Atomically: lock the key's row (created if missing), let ``fn`` return (new state,
        result), write the new state, commit, return the result."""
        with self._conn() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO calibration_state (key) VALUES (%s) ON CONFLICT (key) DO NOTHING",
                (key,),
            )
            row = conn.execute(
                "SELECT state, version FROM calibration_state WHERE key = %s FOR UPDATE", (key,)
            ).fetchone()
            old = row[0] if row else None
            state, result = fn(None if old is None else dict(json.loads(old)))
            text = json.dumps(state, separators=(",", ":"))
            version = (int(row[1]) if row else 0) + 1  # the row is locked: nobody else writes
            point = point_of(version, state, self.history_points)
            if point is None:
                conn.execute(
                    "UPDATE calibration_state SET state = %s, version = version + 1, "
                    "updated = now() WHERE key = %s",
                    (text, key),
                )
            else:  # one statement: the history costs no round trip of its own
                conn.execute(_UPDATE_WITH_POINT, {
                    "key": key, "state": text, "version": version, "time": time.time(),
                    "stride": stride(version, self.history_points),
                    "point": json.dumps(point, separators=(",", ":")),
                })  # fmt: skip
        return result

    def history(self, key: str) -> list[HistoryPoint]:
        if not self._read("SELECT to_regclass('calibration_history') IS NOT NULL")[0][0]:
            return []  # opened by a reader (no migration) on a store from before the history
        rows = self._read(
            'SELECT version, "time", point FROM calibration_history WHERE key = %s '
            "ORDER BY version",
            (key,),
        )
        return [HistoryPoint(int(v), float(t), json.loads(p)) for v, t, p in rows]

    def keys(self) -> list[str]:
        rows = self._read(
            'SELECT key FROM calibration_state WHERE state IS NOT NULL ORDER BY key COLLATE "C"'
        )
        return [r[0] for r in rows]

    def states(self) -> dict[str, State]:
        """Every key with its state, in one query (what the report reads)."""
        rows = self._read(
            "SELECT key, state FROM calibration_state WHERE state IS NOT NULL "
            'ORDER BY key COLLATE "C"'
        )
        return {k: dict(json.loads(s)) for k, s in rows}

    # -- flags ---------------------------------------------------------------------------------

    def add_flag(self, flag: dict[str, Any]) -> int:
        """Commit one flag record (before the response is sent); returns its id."""
        columns = [_text(flag[k]) for k in FLAG_COLUMNS[1:] if k != "policies"]
        with self._conn() as conn, conn.transaction():
            # One record at a time from its id to its commit: ids are committed in order, so a
            # reader following the log by id (``after``) never passes one committed late.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (FLAG_LOCK,))
            row = conn.execute(
                'INSERT INTO flags ("time", request_id, route, model, key, action, policies, '
                "record) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    *columns,
                    [_text(p) for p in flag["policies"]],
                    json.dumps(flag, separators=(",", ":"), default=str),
                ),
            ).fetchone()
        return int(row[0]) if row else 0

    def flags(
        self,
        *,
        since: float | None = None,
        policy: str | None = None,
        limit: int | None = None,
        after: int | None = None,
    ) -> list[dict[str, Any]]:
        """Flag records, oldest first, filtered by time and by policy name (exact)."""
        sql = "SELECT id, record FROM flags WHERE true"
        args: list[Any] = []
        if since is not None:
            sql += ' AND "time" >= %s'
            args.append(since)
        if policy is not None:
            sql += " AND %s = ANY(policies)"
            args.append(_text(policy))
        if after is not None:
            sql += " AND id > %s"
            args.append(after)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT %s"
            args.append(limit)
        return [{"id": r[0], **json.loads(r[1])} for r in self._read(sql, args)]

    def flag(self, flag_id: int) -> dict[str, Any] | None:
        rows = self._read("SELECT id, record FROM flags WHERE id = %s", (flag_id,))
        return {"id": rows[0][0], **json.loads(rows[0][1])} if rows else None

    def count_flags(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM flags")[0][0])

    def flag_counts(self) -> dict[tuple[str | None, str], int]:
        rows = self._read("SELECT key, action, COUNT(*) FROM flags GROUP BY key, action")
        return {(k, a): int(n) for k, a, n in rows}

    # -- the process ---------------------------------------------------------------------------

    def ping(self) -> None:
        """One trivial query, bounded by ``timeout_s``; raises when the database is not there,
        lacks a table, or takes no writes (a standby after a failover)."""
        rows = self._read(
            "SELECT current_setting('transaction_read_only'), "
            "EXISTS (SELECT 1 FROM calibration_state), EXISTS (SELECT 1 FROM flags)"
        )
        if rows[0][0] == "on":
            raise StoreUnavailableError(f"the store {self.url} is read-only (a standby?)")

    def close(self) -> None:
        self._pool.close(timeout=self.timeout_s)
        self._watchdog.close()
