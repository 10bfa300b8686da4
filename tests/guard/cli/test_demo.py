"""``calguard demo`` runs end to end, from a data folder or from the bundled sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.cli import main
from guard.cli.demo import load_questions


def test_demo_prints_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--questions", "12"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out
    rows = [line.split()[0] for line in out.splitlines()[3:]]
    assert rows == ["none", "pride", "adaptive", "cyclic"]


def test_demo_falls_back_to_the_bundled_sample(tmp_path: Path) -> None:
    for data in (None, tmp_path / "none"):
        questions, source = load_questions(100, data)
        assert len(questions) == 40
        assert "bundled sample" in source
        assert all(len(opts) == 4 and 0 <= g < 4 for _, _, opts, g in questions)


def test_demo_reads_mmlu_from_the_data_folder(recorded_dir: Path) -> None:
    questions, source = load_questions(100, recorded_dir.parent)
    assert len(questions) == 100
    assert "MMLU test questions" in source


@pytest.mark.parametrize("questions", ["0", "-3"])
def test_a_question_count_under_one_is_a_usage_error(
    questions: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: 0 was a traceback (accuracy of an empty set), -3 quietly asked 37 of the 40.
    with pytest.raises(SystemExit) as info:
        main(["demo", "--questions", questions])
    assert info.value.code == 2
    assert "argument --questions: must be 1 or more" in capsys.readouterr().err
