"""Shared fixtures. Recorded LLM outputs are read from ../shared/data, never copied here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from guard.evaluation.recorded import McqRecords, load_recorded

RECORDED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "recorded"


def _recorded(name: str = "") -> Path:
    path = RECORDED / name
    if not path.exists():
        pytest.skip(f"{path} not found: shared/data is not beside the checkout")
    return path


@pytest.fixture(scope="session")
def recorded() -> Callable[[str], Path]:
    """``recorded("file.jsonl")`` is that recording's path; the test skips, saying why, when it
    is absent. ``recorded("")`` is the folder."""
    return _recorded


@pytest.fixture(scope="session")
def recorded_dir(recorded: Callable[[str], Path]) -> Path:
    return recorded("")


@pytest.fixture(scope="session")
def arc(recorded: Callable[[str], Path]) -> McqRecords:
    """The recorded ARC-Challenge outputs of Llama-2-13b-chat (skips when absent)."""
    rec = load_recorded(recorded("arc_0s_Llama-2-13b-chat-hf.jsonl"))
    assert isinstance(rec, McqRecords)
    return rec
