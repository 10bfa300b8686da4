"""The default store: calibration state per key and the flag log, in one SQLite file (WAL).

Every change is a read-modify-write inside one ``BEGIN IMMEDIATE`` transaction, so several
workers on one machine share the state without losing updates, and it survives restarts. It
implements :class:`guard.store.base.Store`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from guard.store.base import FLAG_COLUMNS, State

T = TypeVar("T")

_SCHEMA = (
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
)


class SQLiteStore:
    """SQLite-backed store (``sqlite:///path``). Thread-safe; one connection per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._tx() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def load(self, key: str) -> State | None:
        row = (
            self._conn()
            .execute("SELECT state FROM calibration_state WHERE key = ?", (key,))
            .fetchone()
        )
        return None if row is None else dict(json.loads(row[0]))

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
            return result

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
            return int(cur.lastrowid or 0)

    def flags(
        self, *, since: float | None = None, policy: str | None = None, limit: int | None = None
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
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = self._conn().execute(sql, args).fetchall()
        return [{"id": r[0], **json.loads(r[1])} for r in rows]

    def flag(self, flag_id: int) -> dict[str, Any] | None:
        row = (
            self._conn().execute("SELECT id, record FROM flags WHERE id = ?", (flag_id,)).fetchone()
        )
        return None if row is None else {"id": row[0], **json.loads(row[1])}

    def count_flags(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM flags").fetchone()[0])

    def keys(self) -> list[str]:
        rows = self._conn().execute("SELECT key FROM calibration_state ORDER BY key").fetchall()
        return [r[0] for r in rows]

    def ping(self) -> None:
        self._conn().execute("SELECT 1 FROM calibration_state LIMIT 1").fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
