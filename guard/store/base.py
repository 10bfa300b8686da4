"""What calguard keeps: calibration state per calibration key, its history, and the flag log.

:class:`Store` is the Protocol every store implements (SQLite ships; a server database can be
added for several replicas, see :mod:`guard.store`). Its methods are blocking: the pipeline calls
them off the event loop, once per request at most on the calibrated path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from guard.store.history import HistoryPoint

T = TypeVar("T")
State = dict[str, Any]
FLAG_COLUMNS = ("id", "time", "request_id", "route", "model", "key", "action", "policies")


class Store(Protocol):
    def load(self, key: str) -> State | None:
        """The state of ``key``, or None when it has none yet."""

    def update(self, key: str, fn: Callable[[State | None], tuple[State, T]]) -> T:
        """Atomically (no lost update across processes): read the state of ``key``, let ``fn``
        return (new state, result), write the new state, return the result. In the same
        transaction, when :func:`guard.store.history.point_of` says one is due, write a history
        point of the new state and drop the points off the new stride."""

    def history(self, key: str) -> list[HistoryPoint]:
        """The key's history points, oldest first (at most ``history_points``)."""

    def add_flag(self, flag: dict[str, Any]) -> int:
        """Commit one flag record before the response is sent; returns its id. ``flag`` holds
        the :data:`FLAG_COLUMNS` (``policies`` a list) and the rest of the record."""

    def flags(
        self,
        *,
        since: float | None = None,
        policy: str | None = None,
        limit: int | None = None,
        after: int | None = None,
    ) -> list[dict[str, Any]]:
        """Flag records, oldest first (by id), filtered by time, by policy name and to ids
        above ``after``. A record is committed before the next one takes its id, so a reader
        that follows the log with ``after`` the last id it read never skips one."""

    def flag(self, flag_id: int) -> dict[str, Any] | None: ...

    def count_flags(self) -> int: ...

    def flag_counts(self) -> dict[tuple[str | None, str], int]:
        """Flag records per (calibration key, action); key None: no calibration ran."""

    def keys(self) -> list[str]:
        """Every calibration key with a state."""

    def ping(self) -> None:
        """Answer a trivial query, or raise: what ``GET /readyz`` asks of the store."""

    def close(self) -> None: ...
