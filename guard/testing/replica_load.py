"""The load the replica tests and ``bench.replicas`` send, and the checks that it adds up.

The mix, one kind after the other: pass-through; calibrated MCQ with PriDe on two keys and with
adaptive on a third (each key a template: the text after the options); classification with the
online ``batch`` calibrator; and a flagged reply (the ``flagged`` route of
:data:`guard.testing.replicas.FLAGGED_ROUTE`). Each question's text differs, and each flagged
request carries a unique reference, so its flag record can be found and counted.

:func:`check` reads the store afterwards: every key's planner counts the questions acknowledged
(``started``) and its prior estimator the estimation questions acknowledged (those asked in
every cyclic order), the classifier its inputs; every acknowledged flag has exactly one record
(found by its reference, with its request id); the upstream calls reported equal those the
upstream saw. With ``exact=False`` (a replica killed, the database stopped), a request that
failed may still have been counted by the replica before it failed: the counts may exceed the
acknowledged ones by at most the failed requests of that kind, and no reference is ever
recorded twice.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from calibrators.permutation import cyclic_permutations
from guard.store import open_store

KINDS = ("pass", "pride-a", "pride-b", "adaptive", "classify", "flagged")
MCQ = {"pride-a": ("Answer:", "pride"), "pride-b": ("Your answer:", "pride"),
       "adaptive": ("Reply with a letter:", "adaptive")}  # fmt: skip
LABELS = ["negative", "positive"]
ANIMALS = ["cat", "dog", "owl", "fox", "elk", "yak", "emu", "eel", "ant", "bee"]
REVIEWS = ["a good film", "a bad film", "a dull film", "good, then bad", "a good, good film"]


def sentiment(text: str) -> dict[str, float] | None:
    """The fake upstream's label-word answer to a review: leans 'Positive' whatever it says."""
    if not text.startswith("Review:"):
        return None
    logit = 2.0 * text.count("good") - 2.0 * text.count("bad") - 0.8 * text.count("dull") + 1.2
    p = 1.0 / (1.0 + math.exp(-logit))
    return {" Positive": p, " Negative": 1.0 - p}


def body(kind: str, i: int, ref: str) -> dict[str, Any]:
    """Request ``i`` of ``kind``; ``ref`` marks a flagged one."""
    if kind in MCQ:
        tail, method = MCQ[kind]
        a, b, c, d = (ANIMALS[(i + k) % len(ANIMALS)] for k in range(4))
        text = f"Question {i}: which is a pet?\nOptions:\nA. {a}\nB. {b}\nC. {c}\nD. {d}\n{tail}"
        return {"model": "sim", "messages": [{"role": "user", "content": text}],
                "guard": {"calibration": method}}  # fmt: skip
    if kind == "classify":
        text = f"Review: {REVIEWS[i % len(REVIEWS)]} (no. {i})\nSentiment:"
        task = {"task": "classify", "labels": LABELS, "calibration": "batch"}
        return {"model": "sim", "messages": [{"role": "user", "content": text}], "guard": task}
    if kind == "flagged":
        return {"model": "flagged", "messages": [{"role": "user", "content": f"note {ref}"}]}
    return {"model": "sim", "messages": [{"role": "user", "content": f"hello there {i}"}]}


def run_id(hex_digits: str) -> str:
    """Letters only: a reference with a long run of digits reads as a phone number, and the
    flag log redacts those (PII)."""
    return hex_digits.translate(str.maketrans("0123456789", "ghijklmnop"))


def reference(run: str, i: int) -> str:
    """What marks request ``i`` of a load, to find its flag record."""
    return f"ref-{run}-{i:06d}"


@dataclass
class Sent:
    """One request and what came back (status 0: no HTTP answer at all)."""

    kind: str
    ref: str
    phase: int  # the load's phase when it was sent (a fault moves it on)
    status: int = 0
    code: str | None = None  # the error body's code
    guard: dict[str, Any] | None = None
    request_id: str | None = None
    flags: str | None = None  # x-calguard-flags
    replica: str = ""  # nginx's x-calguard-replica: the replica(s) tried, in order
    error: str = ""
    seconds: float = 0.0  # from sending to the whole reply read


@dataclass
class Load:
    sent: list[Sent] = field(default_factory=list)
    seconds: float = 0.0
    phase: int = 0  # set by a fault as it goes; each request records it when sent
    marks: dict[str, float] = field(default_factory=dict)  # a fault's moments (perf_counter)

    def statuses(self, phase: int | None = None) -> Counter[int]:
        return Counter(s.status for s in self.sent if phase is None or s.phase == phase)

    def failed(self) -> list[Sent]:
        return [s for s in self.sent if s.status != 200]


async def _send(session: aiohttp.ClientSession, url: str, sent: Sent, payload: bytes) -> None:
    t0 = time.perf_counter()
    try:
        async with session.post(
            f"{url}/v1/chat/completions",
            data=payload,
            headers={"content-type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=120),
        ) as r:
            raw = await r.read()
            sent.seconds = time.perf_counter() - t0
            sent.status = r.status
            sent.request_id = r.headers.get("x-calguard-request-id")
            sent.flags = r.headers.get("x-calguard-flags")
            sent.replica = r.headers.get("x-calguard-replica", "")
    except (aiohttp.ClientError, TimeoutError) as exc:
        sent.error = f"{type(exc).__name__}: {exc}"
        return
    try:
        reply = json.loads(raw)
    except ValueError:
        sent.error = f"not JSON: {raw[:200]!r}"
        return
    if sent.status == 200:
        sent.guard = reply.get("guard")
    elif isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        sent.code = reply["error"].get("code")


async def run_load(
    url: str | Sequence[str],
    n: int,
    concurrency: int,
    *,
    fault: Callable[[Load], None] | None = None,
    fault_at: int = 0,
    tail: int = 0,
) -> Load:
    """Send ``n`` requests of the mix to ``url`` at ``concurrency`` (several URLs: in turn, the
    client as its own load balancer). With ``fault``: once
    ``fault_at`` have been answered, ``fault(load)`` runs in a thread while the load goes on, and
    the load lasts until the fault has returned and ``tail`` more requests have been sent (a
    bounded wait is the fault's to keep)."""
    urls = [url] if isinstance(url, str) else list(url)
    load = Load()
    run = run_id(uuid.uuid4().hex[:8])
    cap = 50 * n + tail  # a bound, whatever the fault does
    state: dict[str, Any] = {"next": 0, "answered": 0, "task": None, "after": None}

    def more() -> bool:
        if state["next"] >= cap:
            return False
        if fault is None:
            return bool(state["next"] < n)
        task = state["task"]
        if task is None or not task.done():
            return True  # before the fault and while it lasts, the load goes on
        if state["after"] is None:
            state["after"] = state["next"]
        return bool(state["next"] < max(n, state["after"] + tail))

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            while more():
                i = state["next"]
                state["next"] += 1
                kind = KINDS[i % len(KINDS)]
                sent = Sent(kind, reference(run, i), load.phase)
                load.sent.append(sent)
                await _send(
                    session, urls[i % len(urls)], sent, json.dumps(body(kind, i, sent.ref)).encode()
                )
                state["answered"] += 1
                if fault and state["task"] is None and state["answered"] >= fault_at:
                    state["task"] = asyncio.ensure_future(asyncio.to_thread(fault, load))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        load.seconds = time.perf_counter() - t0
        if state["task"] is not None:
            await state["task"]  # its exception, if any, is the load's
    return load


def _estimation(guard: dict[str, Any]) -> bool:
    """Asked in every cyclic order (so it fed the key's prior estimator)."""
    n = len(guard["probs"])
    orders = {tuple(o) for o in guard.get("orders", [])}
    return guard.get("handling") == "permuted" and set(cyclic_permutations(n)) <= orders


def check(load: Load, store_url: str, upstream_seen: int, *, exact: bool = True) -> list[str]:
    """What does not add up (empty: everything does). See the module docstring."""
    problems: list[str] = []
    ok = [s for s in load.sent if s.status == 200]
    failed = Counter(s.kind for s in load.failed())
    if exact and failed:
        problems.append(f"errors: {dict(load.statuses())}")
    keys: dict[str, tuple[str, str]] = {}
    acked: Counter[str] = Counter()
    estimated: Counter[str] = Counter()
    reported = 0
    for s in ok:
        g = s.guard or {}
        if s.kind in MCQ or s.kind == "classify":
            keys[s.kind] = (g["key"], g["calibration"])
            acked[s.kind] += 1
            estimated[s.kind] += s.kind in MCQ and _estimation(g)
            reported += int(g["upstream_calls"])
        else:
            reported += 1
    store = open_store(store_url)
    try:
        for kind, (key, method) in sorted(keys.items()):
            saved = (store.load(key) or {}).get(method, {})
            if kind in MCQ:
                counts = {
                    "questions": (saved.get("started"), acked[kind]),
                    "estimator samples": (saved["estimator"]["count"], estimated[kind]),
                }
            else:
                counts = {"inputs": (saved.get("count"), acked[kind])}
            for what, (stored, sent) in counts.items():
                top = sent if exact else sent + failed[kind]
                if stored is None or not sent <= stored <= top:
                    problems.append(f"{kind} ({method}): {what} {stored}, acknowledged {sent}"
                                    + ("" if exact else f" (+{failed[kind]} failed)"))  # fmt: skip
        problems += _check_flags(load, store.flags(), exact)
    finally:
        store.close()
    if (reported != upstream_seen) if exact else (reported > upstream_seen):
        problems.append(f"upstream calls: reported {reported}, the upstream saw {upstream_seen}")
    return problems


def _check_flags(load: Load, records: list[dict[str, Any]], exact: bool) -> list[str]:
    problems = []
    by_ref: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        text = str(rec.get("request", {}).get("messages", [{}])[-1].get("content", ""))
        by_ref.setdefault(text.removeprefix("note "), []).append(rec)
    flagged = [s for s in load.sent if s.kind == "flagged"]
    acked = [s for s in flagged if s.status == 200]
    for s in acked:
        found = by_ref.get(s.ref, [])
        if not s.flags:
            problems.append(f"{s.ref}: answered without a flag")
        elif len(found) != 1 or found[0]["request_id"] != s.request_id:
            problems.append(f"{s.ref}: acknowledged, {len(found)} records")
    twice = [r for r, recs in by_ref.items() if len(recs) > 1]
    if twice:
        problems.append(f"recorded more than once: {twice[:5]}")
    refused = {s.ref for s in flagged if s.status != 200}
    stray = [r for r in by_ref if r not in {s.ref for s in acked} and (exact or r not in refused)]
    if stray:
        problems.append(f"records of no acknowledged request: {stray[:5]}")
    return problems


def load_sync(url: str | Sequence[str], n: int, concurrency: int, **kw: Any) -> Load:
    """:func:`run_load` from synchronous code (its own event loop)."""
    return asyncio.run(run_load(url, n, concurrency, **kw))
