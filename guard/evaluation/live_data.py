"""Datasets for ``calguard eval``: multiple-choice or classification items and their prompts.

Recognised forms (the format is read from the file, not from its name):

- headerless CSV ``question,A,B,...,answer`` (MMLU, ARC, CSQA in ``shared/data/datasets``), the
  answer a letter; a folder of them (``mmlu/test``) is one dataset, each file its own subject;
- JSONL with ``question``, ``options`` and ``answer`` (a letter or a 0-based index; ``gold`` is
  accepted for ``answer``, so a recorded ARC file is its own dataset);
- JSONL with ``text`` (or ``sentence``) and ``label`` (a label word or a 0-based index), with the
  label words given by ``--labels`` or by the records' ``label_words``.
"""

from __future__ import annotations

import collections
import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from guard.evaluation.recorded import ID_LETTERS
from guard.evaluation.replay import arc_prompt

DEFAULT_TEMPLATE = "{text}\nAnswer with one word ({labels}).\nAnswer:"


class DatasetError(ValueError):
    """The dataset cannot be read; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class McqItem:
    question: str
    options: tuple[str, ...]
    answer: int  # index into options
    subject: str = ""  # the file's, in a folder of CSVs (else the dataset's)


@dataclass(frozen=True)
class ClassifyItem:
    text: str
    label: int  # index into the dataset's labels


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: Literal["mcq", "classify"]
    items: tuple[McqItem, ...] | tuple[ClassifyItem, ...]
    digest: str  # of the file's bytes: a resumed run must be on the same data
    labels: tuple[str, ...] = ()
    subject: str = ""
    template: str = DEFAULT_TEMPLATE

    def __len__(self) -> int:
        return len(self.items)

    @property
    def n_classes(self) -> int:
        if self.kind == "classify":
            return len(self.labels)
        return max(len(i.options) for i in self.items)  # type: ignore[union-attr]

    def prompt(self, i: int) -> str:
        item = self.items[i]
        if isinstance(item, McqItem):
            return arc_prompt(item.question, item.options, item.subject or self.subject)
        return self.template.format(text=item.text, labels=", ".join(self.labels))

    def gold(self, i: int) -> int:
        item = self.items[i]
        return item.answer if isinstance(item, McqItem) else item.label


def _subject(path: Path) -> str:
    stem = path.stem
    for tail in ("_test", "_dev", "_val"):
        stem = stem.removesuffix(tail)
    return stem.replace("_", " ")


def _answer(value: Any, n: int, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n:
        return value
    if isinstance(value, str) and value.strip().upper() in ID_LETTERS[:n]:
        return ID_LETTERS.index(value.strip().upper())
    raise DatasetError(
        f"{where}: answer {value!r} is not a letter A-{ID_LETTERS[n - 1]} or 0-{n - 1}"
    )


def _csv(path: Path, subject: str = "") -> list[McqItem]:
    items = []
    with path.open(encoding="utf-8", newline="") as f:
        for no, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            if len(row) < 4:
                raise DatasetError(
                    f"{path}:{no}: expected question,A,B,...,answer (headerless), got {len(row)} "
                    "fields"
                )
            options = tuple(row[1:-1])
            gold = _answer(row[-1], len(options), f"{path}:{no}")
            items.append(McqItem(row[0], options, gold, subject))
    _not_a_subject_column(path, items)
    return items


def _not_a_subject_column(path: Path, items: Sequence[McqItem]) -> None:
    """A first column whose values repeat on half the rows or more is a subject (as in
    ``subject,question,A,...,answer``), not questions: read as questions, every option would be
    shifted by one and the gold letter with it, silently. Rows that repeat a question with the
    same options in another order (a position-bias probe) count once."""
    firsts = [q for q, _ in dict.fromkeys((i.question, tuple(sorted(i.options))) for i in items)]
    counts = collections.Counter(firsts)
    seen = sorted(counts)
    if len(firsts) >= 8 and 2 * sum(n for n in counts.values() if n > 1) >= len(firsts):
        shown = ", ".join(repr(v) for v in seen[:3]) + (", ..." if len(seen) > 3 else "")
        raise DatasetError(
            f"{path}: the first column holds {len(seen)} values over {len(firsts)} rows "
            f"({shown}): a subject column? calguard eval reads question,A,B,...,answer "
            "(headerless); drop that column, or give JSONL with question, options, answer and "
            "subject"
        )


def _label(value: Any, labels: Sequence[str], where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(labels):
        return value
    if isinstance(value, str) and value in labels:
        return labels.index(value)
    raise DatasetError(f"{where}: label {value!r} is not one of {list(labels)} nor an index")


def _jsonl(path: Path, labels: Sequence[str] | None) -> tuple[list[Any], tuple[str, ...]]:
    rows = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{no}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{no}: expected a JSON object")
        rows.append((no, row))
    if not rows:
        raise DatasetError(f"{path}: no records")
    first = rows[0][1]
    if "options" in first:
        items: list[Any] = []
        for no, r in rows:
            opts = tuple(str(o) for o in r.get("options") or ())
            if len(opts) < 2 or "question" not in r:
                raise DatasetError(f"{path}:{no}: an MCQ record needs 'question' and 'options'")
            gold = r.get("answer", r.get("gold"))
            items.append(
                McqItem(str(r["question"]), opts, _answer(gold, len(opts), f"{path}:{no}"))
            )
        return items, ()
    if "text" in first or "sentence" in first:
        words = tuple(labels or first.get("label_words") or ())
        if len(words) < 2:
            raise DatasetError(
                f"{path}: a classification dataset needs its label words: pass --labels "
                "(e.g. --labels Negative Positive)"
            )
        items = [
            ClassifyItem(
                str(r.get("text", r.get("sentence", ""))),
                _label(r.get("label"), words, f"{path}:{no}"),
            )
            for no, r in rows
        ]
        return items, words
    raise DatasetError(
        f"{path}:{rows[0][0]}: unknown record; expected 'question'/'options'/'answer' (MCQ) or "
        "'text'/'label' (classification)"
    )


def _first_field(path: Path, name: str) -> Any:
    with path.open(encoding="utf-8") as f:
        first = json.loads(f.readline())
    return first.get(name) if isinstance(first, dict) else None


def load_dataset(
    path: str | Path, labels: Sequence[str] | None = None, template: str | None = None
) -> Dataset:
    """Read ``path`` (CSV or JSONL, see the module docstring)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.csv"))
        if not files:
            raise DatasetError(f"{p}: a folder dataset holds headerless *.csv files; none here")
        if labels:
            raise DatasetError(f"{p}: --labels is for classification datasets (JSONL)")
        digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
        items = [item for f in files for item in _csv(f, _subject(f))]
        return Dataset(p.name, "mcq", tuple(items), digest, subject="general knowledge")
    if not p.is_file():
        raise FileNotFoundError(f"dataset {p} not found")
    digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    if p.suffix == ".csv":
        if labels:
            raise DatasetError(f"{p}: --labels is for classification datasets (JSONL)")
        return Dataset(p.name, "mcq", tuple(_csv(p)), digest, subject=_subject(p))
    items, words = _jsonl(p, labels)
    if not words:
        if labels:
            raise DatasetError(f"{p}: --labels is for classification datasets, this one is MCQ")
        subject = str(_first_field(p, "subject") or _subject(p))
        return Dataset(p.name, "mcq", tuple(items), digest, subject=subject)
    tpl = (template or DEFAULT_TEMPLATE).replace("\\n", "\n")
    if "{text}" not in tpl:
        raise DatasetError("--template must contain {text} (where the input goes)")
    return Dataset(p.name, "classify", tuple(items), digest, words, template=tpl)
