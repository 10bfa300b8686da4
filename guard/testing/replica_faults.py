"""Faults to inject while :func:`guard.testing.replica_load.run_load` runs: a replica
SIGKILLed, the database stopped and started again. Each is a function of the running
:class:`~guard.testing.replica_load.Load`; it moves ``load.phase`` on as it goes, so every
request knows what state the system was in when it was sent, and it notes its moments in
``load.marks``. Every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

import httpx

from guard.testing.postgres_server import PrivatePostgres
from guard.testing.replica_load import Load
from guard.testing.replicas import Replicas

# Phases of a replica kill
BEFORE_KILL, AFTER_KILL = 0, 1
# Phases of a database stop: before it, from the stop on, from the start on, once every
# replica reports itself ready again.
BEFORE_STOP, DOWN, BACK, READY = 0, 1, 2, 3


def kill_replica(group: Replicas, index: int) -> Callable[[Load], None]:
    """SIGKILL replica ``index``; requests sent after it has been reaped are ``AFTER_KILL``."""

    def fault(load: Load) -> None:
        load.marks["kill"] = time.perf_counter()
        group.kill(index)
        load.phase = AFTER_KILL

    return fault


def _wait(what: str, done: Callable[[], bool], wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {wait_s} s")
        time.sleep(0.05)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def stop_database(
    pg: PrivatePostgres,
    replicas: Sequence[str],
    *,
    refused: int = 10,
    hold_s: float = 0.0,
    wait_s: float = 120.0,
) -> Callable[[Load], None]:
    """Stop ``pg`` (fast shutdown) under load; keep it down until ``refused`` requests sent
    while it was down got a 503, as many pass-through ones were answered, and ``hold_s`` has
    passed; start it again on the same data and port; wait until every replica's ``/readyz``
    answers 200."""

    def down_long_enough(load: Load) -> bool:
        down = [s for s in load.sent if s.phase == DOWN]
        n503 = sum(s.status == 503 for s in down)
        flowed = sum(s.status == 200 and s.kind == "pass" for s in down)
        return n503 >= refused and flowed >= refused

    def fault(load: Load) -> None:
        load.phase = DOWN
        load.marks["stop"] = time.perf_counter()
        pg.stop()
        _wait("503s while the database is down", lambda: down_long_enough(load), wait_s)
        _wait("the hold", lambda: time.perf_counter() - load.marks["stop"] >= hold_s, hold_s + 1)
        pg.start()
        load.marks["start"] = time.perf_counter()
        load.phase = BACK
        for url in replicas:
            _wait(f"{url} ready again", partial(_ready, url), wait_s)
        load.marks["ready"] = time.perf_counter()
        load.phase = READY

    return fault
