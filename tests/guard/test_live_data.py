"""Datasets of ``calguard eval``: every accepted form, and the mistakes named with their line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import guard.testing
from guard.evaluation.live_data import ClassifyItem, DatasetError, McqItem, load_dataset


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_headerless_csv(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path, "high_school_physics_test.csv", "Q?,a,b,c,d,C\n"))
    assert ds.kind == "mcq"
    assert ds.items == (McqItem("Q?", ("a", "b", "c", "d"), 2),)
    assert ds.subject == "high school physics"
    assert "Question: Q?\nOptions:\nA. a\nB. b\nC. c\nD. d\nAnswer:" in ds.prompt(0)


@pytest.mark.parametrize("answer", ["B", 1, "b"])
def test_mcq_jsonl(tmp_path: Path, answer: object) -> None:
    row = {"question": "Q?", "options": ["x", "y", "z"], "answer": answer}
    ds = load_dataset(write(tmp_path, "q.jsonl", json.dumps(row) + "\n"))
    assert ds.items == (McqItem("Q?", ("x", "y", "z"), 1),)
    assert ds.n_classes == 3


def test_classification_jsonl(tmp_path: Path) -> None:
    rows = [{"text": "good", "label": "pos"}, {"sentence": "bad", "label": 0}]
    path = write(tmp_path, "c.jsonl", "\n".join(json.dumps(r) for r in rows))
    ds = load_dataset(path, ["neg", "pos"], "Review: {text}\\nSentiment:")
    assert ds.kind == "classify"
    assert ds.items == (ClassifyItem("good", 1), ClassifyItem("bad", 0))
    assert ds.prompt(0) == "Review: good\nSentiment:"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "Q?,a,b,c,d,E\n", "a.csv:1: answer 'E' is not a letter A-D"),
        ("a.csv", "Q?,a\n", "a.csv:1: expected question,A,B,...,answer"),
        ("a.jsonl", "{not json\n", "a.jsonl:1: not JSON"),
        ("a.jsonl", '{"foo": 1}\n', "unknown record"),
        ("a.jsonl", '{"text": "t", "label": "maybe"}\n', "label 'maybe' is not one of"),
        ("a.jsonl", "\n", "no records"),
    ],
)
def test_mistakes_name_the_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    labels = ["yes", "no"] if "label" in text else None
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_dataset(write(tmp_path, name, text), labels)


def test_a_template_without_the_input(tmp_path: Path) -> None:
    path = write(tmp_path, "c.jsonl", '{"text": "t", "label": 0}\n')
    with pytest.raises(DatasetError, match=r"must contain \{text\}"):
        load_dataset(path, ["a", "b"], "Sentiment:")


def test_a_folder_of_csvs_is_one_dataset_each_file_its_subject(tmp_path: Path) -> None:
    write(tmp_path, "college_physics_test.csv", "P?,a,b,c,d,A\n")
    write(tmp_path, "anatomy_test.csv", "A?,a,b,c,d,D\nB?,a,b,c,d,B\n")
    ds = load_dataset(tmp_path)
    assert [(i.question, i.answer, i.subject) for i in ds.items] == [  # type: ignore[union-attr]
        ("A?", 3, "anatomy"), ("B?", 1, "anatomy"), ("P?", 0, "college physics")
    ]  # fmt: skip
    assert "questions about college physics" in ds.prompt(2)
    with pytest.raises(DatasetError, match="none here"):
        load_dataset(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path)


def test_a_subject_column_is_named_not_read_as_questions() -> None:
    """The demo's own file (subject,question,A,B,C,D,answer) was read as a question 'arithmetic'
    with five options and the gold letter shifted by one: 15 % where the demo gets 65 %."""
    demo = Path(guard.testing.__file__).parent / "demo_data" / "sample_questions.csv"
    with pytest.raises(DatasetError, match="a subject column"):
        load_dataset(demo)


def test_one_question_in_every_order_of_its_options_is_not_a_subject_column(
    tmp_path: Path,
) -> None:
    """A position-bias probe: each question with its options in every rotation (so the gold
    answer sits at each letter). The question repeats on every row of its group, which the
    subject-column check read as a subject (10 questions x 4 rotations: refused)."""
    rows = []
    for q in range(10):
        opts = [f"option {q}-{k}" for k in range(4)]
        for r in range(4):
            rotated = opts[r:] + opts[:r]
            rows.append([f"Question {q}?", *rotated, "ABCD"[rotated.index(opts[0])]])
    f = tmp_path / "rotations.csv"
    with f.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    data = load_dataset(f)
    assert len(data.items) == 40
    assert data.items[1].options[data.items[1].answer] == "option 0-0"
