"""guard.tasks.detection: which prompts a route with ``auto_detect`` calibrates.

Two measured figures (printed with ``-s``):

- ordinary prompts with numbered or lettered lists (``tests/data/ordinary_prompts.jsonl``,
  written for this test) that pass through untouched: at least 99 %;
- MMLU, ARC-Challenge and CommonsenseQA questions from ``../shared/data/datasets`` rendered in
  three usual templates that are detected with their options parsed right: at least 97 %.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from guard.evaluation.replay import arc_prompt
from guard.tasks.detection import _HEADER, _strong_tail, detect_mcq

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "data" / "ordinary_prompts.jsonl"
DATASETS = ROOT.parent / "shared" / "data" / "datasets"
LETTERS = "ABCDEFGHIJ"


def _lm_eval(question: str, options: Sequence[str]) -> str:
    lines = [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    return f"Question: {question}\n" + "\n".join(lines) + "\nAnswer:"


def _chat(question: str, options: Sequence[str]) -> str:
    lines = [f"({LETTERS[i]}) {o}" for i, o in enumerate(options)]
    return f"{question}\n" + "\n".join(lines) + "\nAnswer with the letter of the correct option."


TEMPLATES: dict[str, Callable[[str, Sequence[str]], str]] = {
    "arc_prompt": arc_prompt,
    "lm-eval": _lm_eval,
    "chat": _chat,
}


def _corpus() -> list[dict[str, str]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def _rows(path: Path, n_options: int) -> Iterator[tuple[str, list[str]]]:
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            yield row[0], row[1 : 1 + n_options]


def _questions() -> dict[str, list[tuple[str, list[str]]]]:
    mmlu = [q for p in sorted((DATASETS / "mmlu" / "test").glob("*.csv")) for q in _rows(p, 4)]
    return {
        "mmlu": mmlu,
        "arc": list(_rows(DATASETS / "arc" / "arc_test.csv", 4)),
        "csqa": list(_rows(DATASETS / "csqa" / "csqa_test.csv", 5)),
    }


# -- the two figures ---------------------------------------------------------------------------


def test_ordinary_prompts_with_lists_pass_through_untouched() -> None:
    prompts = _corpus()
    assert len(prompts) >= 300
    assert len({p["prompt"] for p in prompts}) == len(prompts)
    taken = [p for p in prompts if detect_mcq(p["prompt"]) is not None]
    share = 1 - len(taken) / len(prompts)
    print(
        f"\nordinary prompts passed through untouched: {len(prompts) - len(taken)}/"
        f"{len(prompts)} = {share:.1%}"
    )
    assert share >= 0.99, [p["prompt"][:80] for p in taken]


def test_mmlu_arc_and_csqa_questions_are_detected_in_three_templates() -> None:
    if not DATASETS.is_dir():
        pytest.skip(f"{DATASETS} is absent: the dataset half of the detection figures needs it")
    detected = total = 0
    per: dict[str, list[int]] = {}
    for source, questions in _questions().items():
        for name, template in TEMPLATES.items():
            hits = 0
            for question, options in questions:
                found = detect_mcq(template(question, options))
                hits += found is not None and found.options == [o.strip() for o in options]
            per[f"{source}/{name}"] = [hits, len(questions)]
            detected, total = detected + hits, total + len(questions)
    print(
        f"\nMMLU/ARC/CSQA questions detected, options right: {detected}/{total} = "
        f"{detected / total:.2%}"
    )
    for key, (hits, n) in per.items():
        print(f"  {key}: {hits}/{n}")
    assert total > 45_000  # 16,423 questions x 3 templates when the folder is complete
    assert detected / total >= 0.97


# -- cases ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Which is 2 + 2?\nA. three\nB. four\nC. five",
        "What is the capital of France?\nA) Paris\nB) Rome\nC) Madrid",
        "Choose the correct answer.\nWater at sea level boils at:\n1. 90 C\n2. 100 C",
        "Question: Which gas do plants absorb?\nOptions:\nA. Oxygen\nB. Carbon dioxide\nAnswer:",
        "Where is a knight portrayed as a hero?\n(A) chess board\n(B) fairy tale\n(C) castle\n"
        "Answer with the letter of the correct option.",
        "Which of the following is a mammal?\nA. Shark\nB. Dolphin",
        "The sky is ___.\nA. green\nB. blue\nRespond with only the letter.",
        "Pick one.\nQ: Largest ocean?\nA. Atlantic\nB. Pacific\nThe answer is",
        "Q: Who wrote Hamlet?\n(A) Dickens\n(B) Shakespeare\nA:",
        "Rice or beans?\nA. Rice\nB. Beans\nWhich one is cheaper per gram?",
    ],
)
def test_multiple_choice_questions_are_detected(text: str) -> None:
    found = detect_mcq(text)
    assert found is not None
    assert found.n >= 2


@pytest.mark.parametrize(
    "text",
    [
        # The two prompts of issue 8, hijacked by the old detector.
        "Rewrite my plan more politely:\n1. Buy milk\n2. Call mom\n3. Fix bike",
        "Translate to French:\nA. Good morning\nB. Thank you\nC. See you tomorrow",
        # A list with no stem, a stem with no question, something after the list.
        "1. Buy milk\n2. Call mom",
        "My shopping list:\nA. Eggs\nB. Bread",
        "Which of these is cheapest?\nA. Rice\nB. Beans\nThanks in advance!",
        "Agenda:\n1. Intro\n2. Budget\nAnswer: none needed, just format it.",
        "Here are the reasons for my resignation:\n1. Better offer\n2. Relocating\n"
        "Write a gracious resignation letter.",
        # Quizzes that ask for more than a letter.
        "Which is correct? Explain why each of the others is wrong.\nA. 2 + 2 = 5\nB. 2 + 2 = 4",
        "Question: Which planet is largest?\nA. Mars\nB. Jupiter\nAnswer step by step.",
        "Translate this quiz into German:\nQuestion: Which is largest?\nA. Mars\nB. Jupiter\n"
        "Answer:",
        "Select all that apply.\nWhich are fruits?\nA. Apple\nB. Carrot\nC. Pear",
        # An option of a page is not an option.
        "Which cover letter is better?\nA. " + "word " * 200 + "\nB. short",
    ],
)
def test_ordinary_prompts_are_not_detected(text: str) -> None:
    assert detect_mcq(text) is None


# The one pattern _strong_tail replaced, as the reference for what it says.
_STRONG_TAIL = re.compile(
    r"^(?:(?:the\s+)?(?:correct\s+|final\s+|best\s+|right\s+|your\s+)?(?:answer|choice|option)"
    r"(?:\s+is)?|A)\s*[:\uff1a\-]?\s*[(\[]?$"
    r"|\b(?:answer|respond|reply|choose|select|pick|output|return)\b[^.?!]*"
    r"\b(?:letter|option|choice|number|correct\s+answer|[A-J](?:,|\s+or)\s+[A-J])\b",
    re.IGNORECASE,
)


@pytest.mark.parametrize("seed", range(10))
def test_a_strong_tail_is_what_the_one_pattern_found(seed: int) -> None:
    rng = random.Random(seed)
    words = ["answer", "Reply", "with", "the", "letter", "correct", "A", "b", "or", "C"]
    words += [",", ".", "?", "!", ":", "x", "options", "(", "is", "pick", " ", "\n", "answers"]
    for _ in range(500):
        text = "".join(rng.choice(words) + rng.choice(["", " "]) for _ in range(rng.randrange(12)))
        assert _strong_tail(text) == bool(_STRONG_TAIL.search(text)), text


def test_a_preamble_of_many_answer_verbs() -> None:
    # Each "answer" once scanned the rest of the sentence for a letter: n verbs, n squared.
    prompt = "Describe " + "answer " * 100_000 + "\nQuestion: Which?\nA. x\nB. y\nAnswer:"
    assert detect_mcq(prompt) is None
    assert detect_mcq(prompt.replace("Describe", "Now", 1)) is not None


_CUBIC_HEADER = re.compile(
    r"(?:^|\n)[ \t]*(?:answer\s+)?(?:options|choices|alternatives)\s*:?[ \t]*\n?\s*$", re.I
)


@pytest.mark.parametrize("seed", range(5))
def test_a_header_is_what_the_cubic_pattern_found(seed: int) -> None:
    rng = random.Random(seed)
    words = ["\n", " ", "\t", ":", "options", "Answer", "choices", "x", "\r", "\n\n"]
    for _ in range(500):
        text = "".join(rng.choice(words) for _ in range(rng.randrange(10)))
        assert bool(_HEADER.search(text)) == bool(_CUBIC_HEADER.search(text)), repr(text)


def test_a_header_line_with_a_long_run_of_spaces() -> None:
    # 2,000 spaces after "options" took 10 s: every way to share them among four quantifiers.
    spaces = " " * 200_000
    assert detect_mcq(f"Pick one\noptions{spaces}x\nA. a\nB. b") is None
    assert detect_mcq(f"Pick one\noptions:{spaces}\nA. a\nB. b") is not None
