"""What ``calguard report`` reads from a store: per calibration key, the learned prior over
option IDs or labels and how it moved (the store's bounded history, :mod:`guard.store.history`),
the traffic that taught it (:mod:`guard.tasks.traffic`) and the flag records logged under it.

Traffic is counted in the key's state from schema version 2 on; a key's requests written before
that (or by a method that keeps no state: ``none`` classification, judges) are not in it. Flags are
counted from the flag log, every record; those of requests no calibration ran for (pass-through,
a prompt-side block, judges) are the row with no key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from guard.calibrations import STATE_ENTRIES
from guard.evaluation.recorded import ID_LETTERS
from guard.store import Store, open_store
from guard.store.history import HistoryPoint, summary
from guard.tasks.traffic import traffic_of

NO_KEY = "(no calibration)"


@dataclass(frozen=True)
class LearnedPrior:
    key: str
    method: str
    prior: list[float]
    seen: int  # questions or inputs that taught it
    history: tuple[tuple[int, tuple[float, ...]], ...] = ()  # (seen, prior), oldest first; now last

    @property
    def classes(self) -> list[str]:
        """Option IDs, or the label words when the key names them (``...|classify|a/b|...``)."""
        parts = self.key.split("|")
        if "classify" in parts and parts.index("classify") + 1 < len(parts):
            words = parts[parts.index("classify") + 1].split("/")
            if len(words) == len(self.prior):
                return words
        return list(ID_LETTERS[: len(self.prior)])


@dataclass(frozen=True)
class KeyTraffic:
    """One row of the traffic table. ``key`` None: requests no calibration ran for."""

    key: str | None
    methods: tuple[str, ...]
    requests: int | None  # None: nothing counted (no state, or written before the counting)
    calls: int | None  # upstream calls of those requests
    flagged: int  # flag records, action "flag"
    blocked: int  # flag records, action "block"

    @property
    def name(self) -> str:
        return NO_KEY if self.key is None else self.key


@dataclass(frozen=True)
class StoreReport:
    priors: list[LearnedPrior]  # the most trafficked keys' learned priors, with their history
    traffic: list[KeyTraffic]  # every key with a state or a flag, most requests first


def read_store(url: str, limit: int = 12) -> StoreReport:
    """Priors (the ``limit`` most trafficked, for methods that learn one) and the traffic and
    flags of every key of the store at ``url`` (which must exist)."""
    store = open_store(url, must_exist=True)
    try:
        states = {k: store.load(k) or {} for k in store.keys()}  # noqa: SIM118 (a Store)
        priors = []
        for key, state in states.items():
            for method, found in summary(state).items():
                if found["seen"] > 0:
                    priors.append(LearnedPrior(key, method, found["prior"], found["seen"]))
        priors = sorted(priors, key=lambda p: -p.seen)[:limit]
        histories = {key: _history(store, key) for key in {p.key for p in priors}}
        priors = [_with_history(p, histories[p.key]) for p in priors]
        return StoreReport(priors, _traffic(states, _flag_counts(store)))
    finally:
        store.close()


def _history(store: Store, key: str) -> list[HistoryPoint]:
    read = getattr(store, "history", None)  # a plugin store may keep none
    return list(read(key)) if read is not None else []


def _flag_counts(store: Store) -> dict[tuple[str | None, str], int]:
    count = getattr(store, "flag_counts", None)
    if count is not None:
        return dict(count())
    out: dict[tuple[str | None, str], int] = {}
    for f in store.flags():  # a plugin store without the count: read the log
        k = (f.get("key"), str(f.get("action")))
        out[k] = out.get(k, 0) + 1
    return out


def _with_history(p: LearnedPrior, points: Sequence[HistoryPoint]) -> LearnedPrior:
    line: dict[int, tuple[float, ...]] = {}
    for point in points:
        mine = point.methods.get(p.method)
        if mine and len(mine["prior"]) == len(p.prior):
            line[int(mine["seen"])] = tuple(float(x) for x in mine["prior"])
    line[p.seen] = tuple(p.prior)  # where it stands now
    return LearnedPrior(p.key, p.method, p.prior, p.seen, tuple(sorted(line.items())))


def _traffic(
    states: dict[str, dict[str, Any]], flags: dict[tuple[str | None, str], int]
) -> list[KeyTraffic]:
    keys = [*states, *sorted({k for k, _ in flags if k is not None} - set(states))]
    rows = []
    for key in keys:
        state = states.get(key) or {}
        counted = traffic_of(state)
        requests = [int(t.get("requests", 0)) for t in counted.values()]
        calls = [int(t.get("calls", 0)) for t in counted.values()]
        methods = {m for m, v in state.items() if m not in STATE_ENTRIES and isinstance(v, dict)}
        rows.append(
            KeyTraffic(
                key,
                tuple(sorted(methods | set(counted))),
                sum(requests) if counted else None,
                sum(calls) if counted else None,
                flags.get((key, "flag"), 0),
                flags.get((key, "block"), 0),
            )
        )
    rows.sort(key=lambda r: (-(r.requests or 0), -(r.flagged + r.blocked), r.name))
    if any(k is None for k, _ in flags):
        rows.append(KeyTraffic(None, (), None, None, flags.get((None, "flag"), 0),
                               flags.get((None, "block"), 0)))  # fmt: skip
    return rows


def format_traffic(rows: Sequence[KeyTraffic], limit: int | None = None) -> str:
    """The traffic table as text: the ``limit`` first keys, the rest added up in one row."""
    shown = list(rows)
    keyed = [r for r in shown if r.key is not None]
    if limit is not None and len(keyed) > limit:
        rest = keyed[limit:]
        shown = [*keyed[:limit], *(r for r in shown if r.key is None)]
        shown.insert(limit, _sum(f"({len(rest)} more keys)", rest))
    head = ["calibration key", "methods", "requests", "upstream calls", "calls/request",
            "flagged", "blocked"]  # fmt: skip
    body = [
        [
            r.name,
            ",".join(r.methods) or "-",
            "-" if r.requests is None else str(r.requests),
            "-" if r.calls is None else str(r.calls),
            f"{r.calls / r.requests:.2f}" if r.requests and r.calls is not None else "-",
            str(r.flagged),
            str(r.blocked),
        ]
        for r in shown
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)


def _sum(name: str, rows: Sequence[KeyTraffic]) -> KeyTraffic:
    requests = [r.requests for r in rows if r.requests is not None]
    calls = [r.calls for r in rows if r.calls is not None]
    methods = tuple(sorted({m for r in rows for m in r.methods}))
    return KeyTraffic(name, methods, sum(requests) if requests else None,
                      sum(calls) if calls else None, sum(r.flagged for r in rows),
                      sum(r.blocked for r in rows))  # fmt: skip
