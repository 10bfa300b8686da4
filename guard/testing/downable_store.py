"""A SQLite store whose flag writes fail on demand, as a database that is down fails them: each
``add_flag`` is a :class:`~guard.errors.StoreUnavailableError` (a 503) while ``down`` is set, and
every ``flaky``-th one when that is set. For tests of what happens to a flag record then."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guard.errors import StoreUnavailableError
from guard.store.sqlite import SQLiteStore


class DownableStore(SQLiteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.down = False
        self.flaky = 0
        self.calls = 0

    def add_flag(self, flag: dict[str, Any]) -> int:
        self.calls += 1
        if self.down or (self.flaky and self.calls % self.flaky == 0):
            raise StoreUnavailableError("the store is down (a test's)")
        return super().add_flag(flag)
