"""The replicas load's checks can fail: each kind of discrepancy (a flag recorded twice or not at
all, a planner or estimator count off by one, an upstream call not reported, an error) is
named, on a real SQLite store; the load mix's bodies are what the checks expect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guard.checks import redact_secrets
from guard.store import open_store
from guard.store.base import Store
from guard.tasks.prompt_text import find_options
from guard.testing.replica_load import (
    KINDS,
    Load,
    Sent,
    body,
    check,
    reference,
    run_id,
    sentiment,
)

CYCLIC = [[0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1], [3, 0, 1, 2]]


CLASSIFY = {"key": "k-cls", "calibration": "batch", "upstream_calls": 1}


def mcq(calls: int, orders: list[list[int]]) -> dict[str, Any]:
    return {"key": "k-mcq", "calibration": "pride", "upstream_calls": calls,
            "probs": [0.25] * 4, "handling": "permuted", "orders": orders}  # fmt: skip


def flag(store: Store, ref: str, request_id: str) -> None:
    request = {"messages": [{"role": "user", "content": f"note {ref}"}]}
    record = {
        "time": 1.0,
        "request_id": request_id,
        "route": "flagged",
        "model": "sim",
        "key": None,
        "action": "flag",
        "policies": ["max_length"],
        "request": request,
    }
    store.add_flag(record)


def put(store: Store, key: str, state: dict[str, Any]) -> None:
    store.update(key, lambda _: (state, None))


def good(store: Store) -> tuple[Load, int]:
    """A load that adds up, and the upstream calls it made."""
    load = Load()
    load.sent += [
        Sent("pride-a", "r0", 0, 200, guard=mcq(4, CYCLIC)),  # an estimation question
        Sent("pride-a", "r1", 0, 200, guard=mcq(1, CYCLIC[:1])),
        Sent("classify", "r2", 0, 200, guard=CLASSIFY),
        Sent("flagged", "ref-3", 0, 200, request_id="id-3", flags="max_length"),
        Sent("pass", "r4", 0, 200),
    ]
    put(store, "k-mcq", planner(2, 1))
    put(store, "k-cls", {"batch": {"count": 1}})
    flag(store, "ref-3", "id-3")
    return load, 4 + 1 + 1 + 1 + 1


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'c.db'}"


def test_a_load_that_adds_up_has_no_problem(store_url: str) -> None:
    store = open_store(store_url)
    load, calls = good(store)
    store.close()
    assert check(load, store_url, calls) == []


def planner(started: int, estimated: int) -> dict[str, Any]:
    return {"pride": {"started": started, "estimator": {"count": estimated}}}


BREAKS: dict[str, tuple[Callable[[Store, Load], Any], str]] = {
    "flag recorded twice": (lambda s, _: flag(s, "ref-3", "id-x"), "ref-3: acknowledged, 2"),
    "flag of nothing sent": (lambda s, _: flag(s, "ref-9", "id-9"), "no acknowledged"),
    "planner count": (
        lambda s, _: put(s, "k-mcq", planner(3, 1)),
        "pride-a (pride): questions 3, acknowledged 2",
    ),
    "estimator count": (
        lambda s, _: put(s, "k-mcq", planner(2, 2)),
        "estimator samples 2, acknowledged 1",
    ),
    "classifier count": (
        lambda s, _: put(s, "k-cls", {"batch": {"count": 0}}),
        "classify (batch): inputs 0",
    ),
    "an upstream call unreported": (lambda *_: 1, "upstream calls: reported 8, the upstream saw 9"),
    "an error": (lambda _, load: load.sent.append(Sent("pass", "r5", 0, 503)), "errors"),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_each_discrepancy_is_named(store_url: str, name: str) -> None:
    store = open_store(store_url)
    load, calls = good(store)
    breaker, expected = BREAKS[name]
    calls += breaker(store, load) or 0
    store.close()
    problems = check(load, store_url, calls)
    assert any(expected in p for p in problems), problems


def test_after_a_fault_a_failed_request_may_have_been_counted_once(store_url: str) -> None:
    """A replica killed after it counted a question (or recorded a flag) and before it
    answered: within the failed requests of that kind, and never a reference twice."""
    store = open_store(store_url)
    load, calls = good(store)
    load.sent += [Sent("pride-a", "r5", 0, 502), Sent("flagged", "ref-6", 0, 502)]
    put(store, "k-mcq", planner(3, 2))
    flag(store, "ref-6", "id-6")
    store.close()
    assert check(load, store_url, calls + 4, exact=False) == []
    assert check(load, store_url, calls + 4) != []
    store = open_store(store_url)
    put(store, "k-mcq", planner(4, 1))  # two more questions than acknowledged
    flag(store, "ref-6", "id-7")
    store.close()
    problems = check(load, store_url, calls + 4, exact=False)
    assert any("questions 4, acknowledged 2 (+1 failed)" in p for p in problems)
    assert any("recorded more than once: ['ref-6']" in p for p in problems)


def test_the_mix_is_what_the_checks_expect() -> None:
    assert [body(k, i, f"ref-{i}")["model"] for i, k in enumerate(KINDS)] == [
        "sim", "sim", "sim", "sim", "sim", "flagged"]  # fmt: skip
    tails = set()
    for i, kind in enumerate(KINDS[1:4], start=1):
        text = body(kind, i, "")["messages"][0]["content"]
        found = find_options(text)
        assert found is not None
        assert found.n == 4
        tails.add(text[found.spans[-1][1] :])
    assert len(tails) == 3  # three templates: three calibration keys
    assert body("flagged", 5, "ref-x")["messages"][0]["content"] == "note ref-x"
    review = body("classify", 4, "")["messages"][0]["content"]
    assert sentiment(review) is not None
    assert sentiment("hello there") is None


@pytest.mark.parametrize("run", ["43186128", "00000000", "9f0c2e11"])
def test_references_survive_the_flag_logs_redaction(run: str) -> None:
    """Found by the bench: the run id 43186128 made 'ref-43186128-000011' a phone number."""
    for i in range(0, 6000, 7):
        content = body("flagged", i, reference(run_id(run), i))["messages"][0]["content"]
        assert redact_secrets(content) == content
