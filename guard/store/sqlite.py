"""The default store: calibration state per key, its history and the flag log, in one SQLite
file (WAL).

Every change is a read-modify-write inside one ``BEGIN IMMEDIATE`` transaction, so several
workers on one machine share the state without losing updates, and it survives restarts. A
key's history point (:mod:`guard.store.history`) is written in the transaction of the update it
records. It
implements :class:`guard.store.base.Store`. The schema is versioned (:data:`MIGRATIONS`, applied
when the store is opened). A file locked longer than ``timeout_s`` (or unreadable) raises
:class:`~guard.errors.StoreUnavailableError`: the request gets a 503, not a 500.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from guard.errors import StoreUnavailableError
from guard.store.base import FLAG_COLUMNS, State
from guard.store.history import HISTORY_POINTS, HistoryPoint, point_of, stride
from guard.store.migrations import Migration, MigrationResult, log_result, pending

T = TypeVar("T")

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "calibration state and the flag log (the schema from before versioning)",
        (
            """CREATE TABLE IF NOT EXISTS calibration_state (
                key TEXT PRIMARY KEY,
                state TEXT NOT NULL,
                version INTEGER NOT NULL,
                updated REAL NOT NULL DEFAULT (julianday('now'))
            )""",
            """CREATE TABLE IF NOT EXISTS flags (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                time REAL NOT NULL,
                request_id TEXT NOT NULL,
                route TEXT NOT NULL,
                model TEXT NOT NULL,
                key TEXT,
                action TEXT NOT NULL,
                policies TEXT NOT NULL,
                record TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS flags_time ON flags (time)",
        ),
    ),
    Migration(
        2,
        "the history of each key's prior; flags counted per calibration key",
        (
            """CREATE TABLE calibration_history (
                key TEXT NOT NULL,
                version INTEGER NOT NULL,
                time REAL NOT NULL,
                point TEXT NOT NULL,
                PRIMARY KEY (key, version)
            )""",
            "CREATE INDEX flags_key ON flags (key, action)",
        ),
    ),
)

PING_LOCK_S = 1.0  # how long readiness waits for the write lock

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied REAL NOT NULL DEFAULT (julianday('now'))
)"""


@contextmanager
def _available(path: Path) -> Iterator[None]:
    """SQLite's errors (locked past the timeout, I/O, disk full, unreadable, not a database)
    as a 503."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise StoreUnavailableError(
            f"the store sqlite:///{path} is unavailable ({exc}); retry shortly"
        ) from exc


def _wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Put the file in WAL mode. On a new file that other processes are opening at the same
    moment (replicas starting at once), SQLite can refuse the switch with "database is locked"
    at once, without waiting its busy timeout: try again until ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class SQLiteStore:
    """SQLite-backed store (``sqlite:///path``). Thread-safe; one connection per thread."""

    migrations: tuple[Migration, ...] = MIGRATIONS

    def __init__(
        self,
        path: str | Path,
        *,
        timeout_s: float = 30.0,
        migrate: bool = True,
        history_points: int = HISTORY_POINTS,
    ) -> None:
        """``timeout_s``: how long a write waits for another writer's lock before the request
        gets a 503. ``migrate``: bring the schema up to date now (what start-up does).
        ``history_points``: most history points kept per key (0: none written)."""
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.history_points = history_points
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrates = migrate
        self._file: tuple[int, int] | None = None  # the file the schema was brought up in
        self._last_id = 0  # the last flag id this store gave or found in a removed file
        self._ids = threading.Lock()
        self.migrated = self.migrate() if migrate else None  # what opening it applied

    def migrate(self) -> MigrationResult:
        """Apply the missing migrations in one ``BEGIN IMMEDIATE`` transaction (two processes
        starting at once: the second waits, then finds nothing to do)."""
        with self._tx() as db:
            db.execute(_VERSION_TABLE)
            row = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            before = int(row[0])
            todo = pending(before, self.migrations, f"sqlite:///{self.path}")
            for m in todo:
                for statement in m.statements:
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                    (m.version, m.description),
                )
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'flags'").fetchone()
        with self._ids:  # the file's last id: a file made again after it goes on from there
            self._last_id = max(self._last_id, int(row[0]) if row else 0)
        result = MigrationResult(before, max(before, len(self.migrations)), tuple(todo))
        log_result(f"sqlite:///{self.path}", result)
        return result

    def schema_version(self) -> int:
        """The last migration applied (0: none)."""
        with _available(self.path):
            db = self._conn()
            if not db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone():
                return 0
            return int(
                db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            )

    def has_state_table(self) -> bool:
        """Whether the file holds calguard's tables (from before versioning, too)."""
        return bool(
            self._read(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calibration_state'"
            )
        )

    def _identity(self) -> tuple[int, int] | None:
        """(device, inode) of the file at the store's path now; None when there is none."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection to the file at the store's path. A file removed or replaced
        under an open connection (a clean-up job, a volume remounted) would take every write
        made through it: the connection is dropped and the path opened again (the file made
        again with its schema where its directory is there, as at start-up)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.file != self._identity():
            with contextlib.suppress(sqlite3.Error):  # the last id the removed file gave
                sql = "SELECT seq FROM sqlite_sequence WHERE name = 'flags'"
                row = conn.execute(sql).fetchone()
                with self._ids:
                    self._last_id = max(self._last_id, int(row[0]) if row else 0)
            self.close()
            conn = None
        if conn is None:
            if not self.path.parent.is_dir():  # not made again: an unmounted volume's folder
                raise sqlite3.OperationalError("unable to open database file: no folder")
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
            try:
                _wal(conn, self.timeout_s)
                conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
            self._local.file = self._identity()
            if self._migrates and self._file is not None and self._file != self._local.file:
                self.migrate()  # a file made again: its schema, before anything is written
                self._continue_ids()
            self._file = self._local.file
        return conn

    def _continue_ids(self) -> None:
        """A file made again takes flag ids on from the removed one's: an id is never given
        twice, so a reader following the log by id (``after``) reads the new records too."""
        if self._last_id:
            with self._tx() as db:
                if not db.execute(
                    "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'flags'",
                    (self._last_id,),
                ).rowcount:
                    db.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES ('flags', ?)",
                        (self._last_id,),
                    )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with _available(self.path):
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            if self._local.file != self._identity():  # removed while writing: not kept
                raise sqlite3.OperationalError("the file was removed or replaced while written")

    def _read(self, sql: str, args: Any = ()) -> list[Any]:
        with _available(self.path):
            return self._conn().execute(sql, args).fetchall()

    def load(self, key: str) -> State | None:
        rows = self._read("SELECT state FROM calibration_state WHERE key = ?", (key,))
        return dict(json.loads(rows[0][0])) if rows else None

    def update(self, key: str, fn: Callable[[State | None], tuple[State, T]]) -> T:
        """Atomically: read the state of ``key``, let ``fn`` return (new state, result), write
        the new state, and return the result."""
        with self._tx() as db:
            row = db.execute(
                "SELECT state, version FROM calibration_state WHERE key = ?", (key,)
            ).fetchone()
            state, result = fn(None if row is None else dict(json.loads(row[0])))
            db.execute(
                "INSERT INTO calibration_state (key, state, version) VALUES (?, ?, 1) "
                "ON CONFLICT(key) DO UPDATE SET state = excluded.state, "
                "version = calibration_state.version + 1, updated = julianday('now')",
                (key, json.dumps(state, separators=(",", ":"))),
            )
            version = 1 if row is None else int(row[1]) + 1
            point = point_of(version, state, self.history_points)
            if point is not None:
                db.execute(
                    "DELETE FROM calibration_history WHERE key = ? AND version % ? != 0",
                    (key, stride(version, self.history_points)),
                )
                db.execute(
                    "INSERT OR REPLACE INTO calibration_history (key, version, time, point) "
                    "VALUES (?, ?, ?, ?)",
                    (key, version, time.time(), json.dumps(point, separators=(",", ":"))),
                )
            return result

    def history(self, key: str) -> list[HistoryPoint]:
        with _available(self.path):
            try:
                rows = (
                    self._conn()
                    .execute(
                        "SELECT version, time, point FROM calibration_history WHERE key = ? "
                        "ORDER BY version",
                        (key,),
                    )
                    .fetchall()
                )
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
                return []  # opened by a reader (no migration) on a store from before the history
        return [HistoryPoint(int(v), float(t), json.loads(p)) for v, t, p in rows]

    def add_flag(self, flag: dict[str, Any]) -> int:
        """Commit one flag record (before the response is sent); returns its id.

        ``flag`` holds time, request_id, route, model, key, action, policies (list) and the
        rest of the record (request, response, evidence, verdicts), stored as JSON.
        """
        columns = {k: flag[k] for k in FLAG_COLUMNS[1:] if k != "policies"}
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO flags (time, request_id, route, model, key, action, policies, "
                "record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *columns.values(),
                    ",".join(flag["policies"]),
                    json.dumps(flag, separators=(",", ":"), default=str),
                ),
            )
            flag_id = int(cur.lastrowid or 0)
        with self._ids:  # whichever thread finds the file made again continues from here
            self._last_id = max(self._last_id, flag_id)
        return flag_id

    def flags(
        self,
        *,
        since: float | None = None,
        policy: str | None = None,
        limit: int | None = None,
        after: int | None = None,
    ) -> list[dict[str, Any]]:
        """Flag records, oldest first, filtered by time and by policy name."""
        sql = "SELECT id, record FROM flags WHERE 1=1"
        args: list[float | str | int] = []
        if since is not None:
            sql += " AND time >= ?"
            args.append(since)
        if policy is not None:
            sql += " AND instr(',' || policies || ',', ?) > 0"  # exact name: no wildcards
            args.append(f",{policy},")
        if after is not None:
            sql += " AND id > ?"
            args.append(after)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = self._read(sql, args)
        return [{"id": r[0], **json.loads(r[1])} for r in rows]

    def flag(self, flag_id: int) -> dict[str, Any] | None:
        rows = self._read("SELECT id, record FROM flags WHERE id = ?", (flag_id,))
        return {"id": rows[0][0], **json.loads(rows[0][1])} if rows else None

    def count_flags(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM flags")[0][0])

    def flag_counts(self) -> dict[tuple[str | None, str], int]:
        rows = self._read("SELECT key, action, COUNT(*) FROM flags GROUP BY key, action")
        return {(k, a): int(n) for k, a, n in rows}

    def keys(self) -> list[str]:
        return [r[0] for r in self._read("SELECT key FROM calibration_state ORDER BY key")]

    def states(self) -> dict[str, State]:
        """Every key with its state, in one query (what the report reads)."""
        rows = self._read("SELECT key, state FROM calibration_state ORDER BY key")
        return {k: dict(json.loads(s)) for k, s in rows}

    def ping(self) -> None:
        """One trivial query and the write lock, taken and given back at once; raises when the
        file is unreadable, lacks a table, or another writer holds it past a second without
        committing anything meanwhile (every write would wait out ``timeout_s``, then be a
        503, though reads still answer). A lock that stays busy while writes commit (large
        flag records written one after another) is writes going through: ready."""
        self._read("SELECT EXISTS (SELECT 1 FROM calibration_state), EXISTS (SELECT 1 FROM flags)")
        with _available(self.path):
            db = self._conn()
            committed = db.execute("PRAGMA data_version").fetchone()[0]  # by other connections
            db.execute(f"PRAGMA busy_timeout = {int(min(self.timeout_s, PING_LOCK_S) * 1000)}")
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                if db.execute("PRAGMA data_version").fetchone()[0] == committed:
                    raise  # held, and nothing committed: a writer that does not let go
            finally:
                db.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
