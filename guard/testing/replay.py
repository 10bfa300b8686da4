"""A replay upstream: real recorded model behaviour served as an OpenAI-compatible API.

The files of ``shared/data/recorded`` hold what real models answered: an ARC file, the ID
distribution of each question under every cyclic order of its options; the SST-2 file, the
log-probabilities of each label word. :func:`create_replay_upstream` serves them with the fake
upstream's wire format (:mod:`guard.testing.fake_upstream`):

- an MCQ prompt whose question and options are recorded is answered, for whatever cyclic order
  the calibration asks, with that order's recorded row as ``top_logprobs`` over the option IDs;
- a prompt containing a recorded sentence is answered with the label words' recorded
  probabilities as ``top_logprobs`` (``" Negative"``, ``" Positive"``);
- anything else is echoed.

This is how ``calguard eval`` reproduces the README's figures without a key or a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guard.evaluation.recorded import ClassifyRecords, McqRecords, load_recorded
from guard.testing.fake_upstream import FakeUpstreamState, ReplayResponder, create_fake_upstream


class NoAnswer:
    """The MCQ responder of a replay that holds no MCQ recording: every question is unknown."""

    def __call__(self, prefix: str, shown: Sequence[str]) -> None:
        return None


@dataclass
class LabelReplay:
    """Recorded label-word probabilities, found by the input text contained in the prompt."""

    records: ClassifyRecords
    separator: str = " "  # what precedes a label word as a token (the SST-2 template's " ")
    _by_text: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        # Longest first: a sentence that contains another one is matched as itself.
        order = sorted(range(len(self.records)), key=lambda i: -len(self.records.texts[i]))
        self._by_text = {self.records.texts[i]: i for i in order if self.records.texts[i]}

    def __call__(self, prompt: str) -> dict[str, float] | None:
        for text, i in self._by_text.items():
            if text in prompt:
                words = self.records.label_words
                p = np.exp(self.records.logprobs[i])
                return {self.separator + w: float(x) for w, x in zip(words, p, strict=True)}
        return None


def replay_state(paths: Sequence[str | Path]) -> FakeUpstreamState:
    """The fake upstream's state serving ``paths``: at most one MCQ and one label recording."""
    mcq: McqRecords | None = None
    labels: ClassifyRecords | None = None
    for path in paths:
        rec = load_recorded(path)
        if isinstance(rec, McqRecords):
            if mcq is not None:
                raise ValueError(
                    f"{path}: one MCQ recording per replay upstream ({mcq.name} is already "
                    "served; start another replay upstream for it)"
                )
            mcq = rec
        else:
            if labels is not None:
                raise ValueError(f"{path}: one classification recording per replay upstream")
            labels = rec
    if mcq is None and labels is None:
        raise ValueError("a replay upstream needs at least one recorded file")
    responder: Any = NoAnswer() if mcq is None else ReplayResponder(mcq, list(mcq.questions or []))
    models = tuple(r.name for r in (mcq, labels) if r is not None)
    return FakeUpstreamState(
        responder,
        text_responder=None if labels is None else LabelReplay(labels),
        models=models,
    )


def create_replay_upstream(paths: Sequence[str | Path]) -> Any:
    """The replay of ``paths`` as an ASGI app (serve it on 127.0.0.1 with uvicorn)."""
    return create_fake_upstream(replay_state(paths))
