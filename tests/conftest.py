"""Shared fixtures. Recorded LLM outputs are read from ../shared/data, never copied here."""

from __future__ import annotations

from pathlib import Path

import pytest

RECORDED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "recorded"


@pytest.fixture
def recorded_dir() -> Path:
    if not RECORDED.is_dir():
        pytest.skip(
            f"recorded LLM outputs not found at {RECORDED} (shared/data is not beside the checkout)"
        )
    return RECORDED
