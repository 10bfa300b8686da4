"""``calguard demo`` runs end to end, from shared/data or from the bundled sample."""

from __future__ import annotations

from pathlib import Path

import pytest

import guard.demo
from guard.cli import main


def test_demo_prints_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--questions", "12"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out
    rows = [line.split()[0] for line in out.splitlines()[3:]]
    assert rows == ["none", "pride", "adaptive", "cyclic"]


def test_demo_falls_back_to_the_bundled_sample(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(guard.demo, "default_recorded_dir", lambda: tmp_path / "none" / "rec")
    questions, source = guard.demo.load_questions(100)
    assert len(questions) == 40
    assert "bundled sample" in source
    assert all(len(opts) == 4 and 0 <= g < 4 for _, _, opts, g in questions)
