"""Loaders for the recorded-output formats of ``shared/data/recorded``.

Two formats are recognised by their fields:

- MCQ (``probs_cyclic``): per question an (n, n) array whose row k is the distribution over the
  displayed option IDs when the contents are cyclically shifted by k (position j shows
  ``options[(j + k) % n]``), plus ``gold`` (a letter) and ``options``.
- Classification (``label_logprobs``): per input the vocabulary-level log-probabilities of each
  label word's first token, plus the gold ``label`` index and ``label_words``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

ID_LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class McqRecords:
    name: str
    probs_cyclic: npt.NDArray[np.float64]  # (Q, n, n)
    gold: npt.NDArray[np.int64]  # (Q,) original option index
    options: list[list[str]]
    questions: list[str] | None = None  # question texts, when recorded

    @property
    def n_options(self) -> int:
        return int(self.probs_cyclic.shape[1])

    def __len__(self) -> int:
        return int(self.gold.size)


@dataclass(frozen=True)
class ClassifyRecords:
    name: str
    logprobs: npt.NDArray[np.float64]  # (N, L) vocabulary-level, not normalised over labels
    gold: npt.NDArray[np.int64]  # (N,)
    label_words: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return int(self.gold.size)


class RecordedFormatError(ValueError):
    """The file is not in one of the recorded formats."""


def _gold(path: Path, no: int, row: dict[str, object]) -> int:
    """The gold option of record ``no`` (counted from 1, blank lines skipped) as an index."""
    gold = row.get("gold")
    if not isinstance(gold, str) or len(gold) != 1 or gold not in ID_LETTERS:
        raise RecordedFormatError(
            f"{path}: record {no}: 'gold' must be an option letter A-J, got {gold!r}"
        )
    return ID_LETTERS.index(gold)


def load_recorded(path: str | Path) -> McqRecords | ClassifyRecords:
    """Read a recorded JSONL file and return its arrays; the format is detected from the fields."""
    p = Path(path)
    if p.is_dir():
        raise RecordedFormatError(f"{p} is a folder: name the recorded *.jsonl file(s) in it")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecordedFormatError(
            f"{p}: not a recorded JSONL file (not UTF-8: {exc.reason})"
        ) from exc
    rows = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise RecordedFormatError(f"{p}:{no}: not a JSON object ({exc.msg})") from exc
    if not rows:
        raise RecordedFormatError(f"{p}: no records")
    first = rows[0]
    if "probs_cyclic" in first:
        probs = np.asarray([r["probs_cyclic"] for r in rows], dtype=np.float64)
        if probs.ndim != 3 or probs.shape[1] != probs.shape[2]:
            raise RecordedFormatError(f"{p}: probs_cyclic must be n x n, got {probs.shape[1:]}")
        gold = np.asarray([_gold(p, no, r) for no, r in enumerate(rows, 1)], dtype=np.int64)
        return McqRecords(
            p.stem,
            probs,
            gold,
            [list(r["options"]) for r in rows],
            [str(r.get("question", "")) for r in rows],
        )
    if "label_logprobs" in first:
        lp = np.asarray([r["label_logprobs"] for r in rows], dtype=np.float64)
        gold = np.asarray([int(r["label"]) for r in rows], dtype=np.int64)
        texts = [str(r.get("sentence", "")) for r in rows]
        return ClassifyRecords(p.stem, lp, gold, list(first["label_words"]), texts)
    raise RecordedFormatError(
        f"{p}: unknown format; expected records with 'probs_cyclic' (MCQ) or "
        "'label_logprobs' (classification)"
    )
