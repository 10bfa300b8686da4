"""``calguard record``: ask a live endpoint every cyclic order of each multiple-choice question
once, through calguard's own pipeline, and keep what it answered in the recorded format of
``shared/data/recorded`` (``probs_cyclic``), so that ``calguard eval-offline`` can then score
every method, budget and arrival order on that model without another call.

Each question is one calibrated request with ``calibration: cyclic``; its reply's evidence
carries each order's distribution over the displayed IDs (``order_probs``), and row k of the
record is the order whose position j shows ``options[(j + k) % n]``. A question calguard does
not permute as a whole (an option that refers to others: "All of the above") is not recorded,
nor one with another number of options than the dataset's most common: a recorded file has one
shape. A question with an order left unanswered (its call failed after the retries) stops the
run, as ``calguard eval`` stops: a rerun asks it again. Records are written in the dataset's
order as they complete, so an interrupted run keeps what it had and a rerun asks only what is
missing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import openai

from calibrators.permutation import cyclic_shift
from calibrators.referential import check_referential
from guard.evaluation.live_data import Dataset, McqItem
from guard.evaluation.live_run import Endpoint, EvalRunError, ask_each, ask_item, guard_options
from guard.evaluation.recorded import ID_LETTERS

# Fields of a record that must agree for a rerun to continue a file (the others may differ).
SAME_FILE = ("dataset", "digest", "model")


REFERS = "an option refers to others: not permuted as a whole"


class RecordFileError(ValueError):
    """``--out`` holds records of another dataset or model."""


@dataclass
class Tally:
    """What a run did: recorded now, recorded before, and skipped (with why)."""

    recorded: int = 0
    before: int = 0
    sampled: int = 0  # of those recorded now, from sampled answers (the upstream gave no logprobs)
    skipped: Counter[str] = field(default_factory=Counter)


def n_options(ds: Dataset) -> int:
    """The recorded shape: the most common number of options (the first such on a tie)."""
    counts = Counter(len(item.options) for item in ds.items if isinstance(item, McqItem))
    return counts.most_common(1)[0][0]


def read_done(path: Path, meta: dict[str, Any]) -> set[int]:
    """The ``idx`` of the questions ``path`` already holds; a last line cut by an interruption
    (not JSON, no newline) is dropped from the file (that question is asked again). A line
    that is not a record of this run, or a question recorded twice, is refused with its line."""
    if not path.exists():
        return set()
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise RecordFileError(f"{path}: not a recorded JSONL file ({exc})") from exc
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        try:
            json.loads(lines[-1])
        except json.JSONDecodeError:  # cut mid-write
            lines.pop()
        else:  # whole, only its newline missing (an editor's save): keep it
            lines[-1] += "\n"
        path.write_text("".join(lines), encoding="utf-8")
    done: set[int] = set()
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordFileError(
                f"{path}:{no}: not JSON ({exc.msg}); mend or delete that line, then rerun"
            ) from exc
        if not isinstance(row, dict):
            raise RecordFileError(f"{path}:{no}: not a record (a JSON object)")
        diff = [k for k in SAME_FILE if row.get(k) != meta[k]]
        if diff:
            raise RecordFileError(
                f"{path}:{no} was recorded from another run "
                f"({', '.join(f'{k}: {row.get(k)!r}' for k in diff)}); pass another --out, or "
                "delete it to start over"
            )
        idx = row.get("idx")
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise RecordFileError(f"{path}:{no}: 'idx' must be the question's index, got {idx!r}")
        if idx in done:  # eval-offline would score it twice
            raise RecordFileError(f"{path}:{no}: question {idx} is recorded twice; delete one")
        done.add(idx)
    return done


def cyclic_rows(evidence: dict[str, Any], n: int) -> list[list[float]] | None:
    """Row k: the distribution answered for cyclic shift k; None unless every shift answered."""
    answered = {
        tuple(order): probs
        for order, probs in zip(
            evidence.get("orders") or [], evidence.get("order_probs") or [], strict=False
        )
    }
    rows = [answered.get(cyclic_shift(n, k, ())) for k in range(n)]
    if any(r is None or len(r) != n for r in rows):
        return None
    return [[round(float(x), 6) for x in r] for r in rows]  # type: ignore[union-attr]


def _record(
    ds: Dataset, i: int, rows: list[list[float]], answers_from: str, meta: dict[str, Any]
) -> dict[str, Any]:
    item = ds.items[i]
    assert isinstance(item, McqItem)
    return {
        "idx": i,
        "question": item.question,
        "options": list(item.options),
        "gold": ID_LETTERS[item.answer],
        "subject": item.subject or ds.subject,
        "probs_cyclic": rows,
        "answers_from": answers_from,
        **meta,
    }


class InOrderWriter:
    """Appends finished records in the dataset's order: a record waits for the ones before it,
    so the file is always a prefix of the run (plus what earlier runs recorded)."""

    def __init__(self, f: IO[str], todo: Sequence[int]) -> None:
        self._f = f
        self._todo = list(todo)
        self._next = 0
        self._ready: dict[int, dict[str, Any] | None] = {}

    def finish(self, i: int, record: dict[str, Any] | None) -> None:
        self._ready[i] = record
        while self._next < len(self._todo) and self._todo[self._next] in self._ready:
            rec = self._ready.pop(self._todo[self._next])
            if rec is not None:
                self._f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                self._f.flush()
            self._next += 1


async def record(
    client: Any,
    ds: Dataset,
    ep: Endpoint,
    todo: Sequence[int],
    out: IO[str],
    meta: dict[str, Any],
    concurrency: int,
    tick: Callable[[], None] = lambda: None,
) -> Tally:
    """Ask each question of ``todo`` in every cyclic order and write its record to ``out``;
    raise :class:`EvalRunError` on the first question that could not be asked (after the
    workers in flight have finished; what was recorded before it is kept)."""
    n = n_options(ds)
    tally = Tally()
    writer = InOrderWriter(out, todo)

    async def one(i: int) -> dict[str, Any] | None:
        try:
            _, evidence = await ask_item(
                client, ds, ep, i, guard_options(ds, i, "cyclic", f"record/{n}")
            )
        except openai.BadRequestError as exc:
            if getattr(exc, "type", None) != "policy_violation":
                raise
            # A proxy's policy blocks it: on every rerun too, so skipped, not a stop.
            tally.skipped["blocked by a policy of the proxy"] += 1
            return None
        if evidence.get("handling", "permuted") != "permuted":
            tally.skipped[REFERS] += 1
            return None
        rows = cyclic_rows(evidence, n)
        if rows is None:  # an order's call failed, and the answer rests on the others
            raise EvalRunError(
                f"item {i}: {len(evidence.get('order_probs') or [])} of its {n} orders "
                "answered (upstream errors)"
            )
        tally.recorded += 1
        # Without logprobs, each row is the frequencies of sampled answers, not probabilities.
        answers_from = str(evidence.get("answers_from", "logprobs"))
        tally.sampled += answers_from == "samples"
        return _record(ds, i, rows, answers_from, meta)

    async def ask(i: int) -> None:
        options = ds.items[i].options  # type: ignore[union-attr]
        if len(options) != n:
            tally.skipped[f"not {n} options"] += 1
            writer.finish(i, None)
        elif check_referential(options).handling != "permuted":  # known without a call
            tally.skipped[REFERS] += 1
            writer.finish(i, None)
        else:
            writer.finish(i, await one(i))
        tick()

    await ask_each(todo, concurrency, ask)
    return tally
