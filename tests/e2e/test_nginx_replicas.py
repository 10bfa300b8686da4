"""Three ``calguard serve`` replicas behind nginx on 127.0.0.1, one PostgreSQL, the replicas
load at concurrency 64 (calibrated MCQ with PriDe and adaptive on three keys, classification,
flagged replies, pass-through; ``guard.testing.replica_load``):

- steady: every key's planner and prior estimator count exactly the questions acknowledged, the
  classifier its inputs, every acknowledged flag has exactly one record, the upstream calls
  reported equal those made, no error, every replica served;
- one replica SIGKILLed mid-load: only requests in flight on it fail (nginx's 502, never
  replayed; or a reply cut off if it had begun), every request sent after it is answered by
  the two others, nothing acknowledged is lost or counted twice;
- PostgreSQL stopped mid-load (a private server, never the machine's own): 503s while it is
  down, pass-through still flows, no other status, calguard recovers without a restart and
  every request sent after that is answered.

Skips, saying why, without nginx or PostgreSQL. ``python -m bench.replicas`` runs the same at
6,000 requests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import openai
import pytest

from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.nginx import run_nginx
from guard.testing.postgres_server import PrivatePostgres
from guard.testing.replica_faults import (
    AFTER_KILL,
    BACK,
    BEFORE_KILL,
    BEFORE_STOP,
    DOWN,
    READY,
    kill_replica,
    stop_database,
)
from guard.testing.replica_load import Load, check, load_sync, sentiment
from guard.testing.replicas import run_replicas
from guard.testing.servers import serve_in_thread

REQUESTS = 600
CONCURRENCY = 64


@pytest.fixture
def upstream() -> Iterator[tuple[str, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder(), text_responder=sentiment)
    with serve_in_thread(create_fake_upstream(state)) as url:
        yield f"{url}/v1", state


def served_by(load: Load, phase: int | None = None) -> Counter[str]:
    """Answers per replica (the last one nginx tried)."""
    return Counter(
        s.replica.split(", ")[-1]
        for s in load.sent
        if s.status == 200 and (phase is None or s.phase == phase)
    )


def test_three_replicas_behind_nginx_count_everything_once(
    nginx_bin: str, pg_url: str, upstream: tuple[str, FakeUpstreamState]
) -> None:
    url, state = upstream
    with run_replicas(3, upstream=url, store=pg_url) as group, run_nginx(group.urls) as lb:
        before = len(state.requests)
        load = load_sync(lb.url, REQUESTS, CONCURRENCY)
        assert check(load, pg_url, len(state.requests) - before) == []
        assert load.statuses() == {200: REQUESTS}
        assert sorted(served_by(load)) == sorted(u.removeprefix("http://") for u in group.urls)
        with openai.OpenAI(base_url=f"{lb.url}/v1", api_key="x", max_retries=0) as client:
            r = client.chat.completions.create(
                model="sim",
                messages=[{"role": "user", "content": "Which?\nA. cat\nB. dog\nAnswer:"}],
                extra_body={"guard": {"calibration": "pride"}},
            )
        assert r.choices[0].message.content in ("A", "B")
        assert (r.model_extra or {})["guard"]["calibration"] == "pride"


def test_a_replica_killed_mid_load_loses_and_doubles_nothing(
    nginx_bin: str, pg_url: str, upstream: tuple[str, FakeUpstreamState]
) -> None:
    url, state = upstream
    with run_replicas(3, upstream=url, store=pg_url) as group, run_nginx(group.urls) as lb:
        dead = group.urls[0].removeprefix("http://")
        before = len(state.requests)
        load = load_sync(
            lb.url,
            REQUESTS,
            CONCURRENCY,
            fault=kill_replica(group, 0),
            fault_at=REQUESTS // 3,
            tail=REQUESTS // 3,
        )
        assert group.processes[1].poll() is None
        assert group.processes[2].poll() is None
    # Only requests in flight on the dead replica failed (at most one per client connection):
    # nginx's 502, OpenAI-shaped, naming that replica; or, for a reply the replica had begun to
    # send, the connection closed before its end (no status to change by then).
    failed = load.failed()
    assert all(s.phase == BEFORE_KILL for s in failed)
    for s in failed:
        if s.status:
            assert (s.status, s.code, s.replica) == (502, "replica_unavailable", dead)
        else:
            assert s.error.startswith(("ServerDisconnectedError", "ClientPayloadError")), s.error
    assert len(failed) <= CONCURRENCY
    # Everything sent after the kill was answered, by the two others.
    after = load.statuses(AFTER_KILL)
    assert set(after) == {200}
    assert after[200] >= REQUESTS // 3
    assert dead not in served_by(load, AFTER_KILL)
    assert len(served_by(load, AFTER_KILL)) == 2
    # Every acknowledged flag recorded once, nothing counted twice; a failed request may have
    # been counted by the dead replica before it died (within the failed ones).
    assert check(load, pg_url, len(state.requests) - before, exact=False) == []


def test_postgres_stopped_mid_load_is_503s_then_recovery(
    nginx_bin: str, private_pg: PrivatePostgres, upstream: tuple[str, FakeUpstreamState]
) -> None:
    url, state = upstream
    store = f"{private_pg.url}?timeout_s=1"  # a store call waits at most 1 s, then 503
    with run_replicas(3, upstream=url, store=store) as group, run_nginx(group.urls) as lb:
        before = len(state.requests)
        load = load_sync(
            lb.url,
            REQUESTS,
            CONCURRENCY,
            fault=stop_database(private_pg, group.urls, refused=10),
            fault_at=REQUESTS // 4,
            tail=REQUESTS // 4,
        )
        assert all(p.poll() is None for p in group.processes)  # no replica restarted
    # No 500, no 502: a 503 for what needs the store, from the stop until calguard is back.
    for phase in (BEFORE_STOP, DOWN, BACK):
        sent = [s for s in load.sent if s.phase == phase]
        assert {(s.status, s.code) for s in sent} <= {(200, None), (503, "store_unavailable")}
        assert all(s.status == 200 for s in sent if s.kind == "pass")  # no store: it flows
    assert load.statuses(BEFORE_STOP)[503] <= CONCURRENCY  # only those in flight at the stop
    assert load.statuses(DOWN)[503] >= 10
    assert load.statuses(READY) == {200: load.statuses(READY).total()}
    assert load.statuses(READY).total() >= REQUESTS // 4
    assert check(load, private_pg.url, len(state.requests) - before, exact=False) == []
