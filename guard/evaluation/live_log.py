"""The results of a ``calguard eval`` run, one JSON line per answered item, appended as they
arrive so that an interrupted run resumes where it stopped.

The first line is the run's header (dataset digest, model, endpoint, run id): a rerun with the
same log continues the run only if it describes the same run, and keeps its run id, so the
calibration keys (and the priors learned under them) are the ones the first part used. A line
cut by an interruption is dropped when the log is reopened.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

# Header fields that must agree for a rerun to continue a run (the others may change).
SAME_RUN = ("dataset", "digest", "kind", "model", "via", "seed")


class ResumeError(ValueError):
    """The log belongs to another run."""


@dataclass(frozen=True)
class Answer:
    calibration: str
    item: int
    gold: int
    pred: int
    probs: list[float]
    calls: int
    tokens: int


class ResultLog:
    """``open`` it with this run's header; ``done`` is what a previous part answered."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.answers: list[Answer] = []
        lines: list[str] = []
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            if lines and not lines[-1].endswith("\n"):
                lines.pop()  # cut by an interruption: that item is asked again
        if lines:
            old = json.loads(lines[0])["header"]
            diff = [k for k in SAME_RUN if old.get(k) != header.get(k)]
            if diff:
                raise ResumeError(
                    f"{path} holds another run "
                    f"({', '.join(f'{k}: {old.get(k)!r}' for k in diff)}); "
                    "pass another --out, or delete it to start over"
                )
            header = {**header, "run": old["run"]}
            self.answers = [Answer(**json.loads(line)) for line in lines[1:] if line.strip()]
        else:
            header = {**header, "run": uuid.uuid4().hex[:12]}
            lines = [json.dumps({"header": header}) + "\n"]
        self.header = header
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(lines), encoding="utf-8")
        self._file: IO[str] = path.open("a", encoding="utf-8")

    @property
    def run_id(self) -> str:
        return str(self.header["run"])

    def done(self, calibration: str) -> set[int]:
        return {a.item for a in self.answers if a.calibration == calibration}

    def append(self, answer: Answer) -> None:
        self.answers.append(answer)
        self._file.write(json.dumps(asdict(answer)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
