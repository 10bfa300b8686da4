"""guard.tasks.distribution: a distribution over answer IDs from logprobs (chat and legacy
shapes) or from sampled answers, and the ask-then-fall-back flow."""

from __future__ import annotations

import asyncio
import copy
import math
from typing import Any

import numpy as np
import pytest

from guard.tasks.distribution import (
    SAMPLES,
    add_usage,
    ask_distribution,
    distribution_from_logprobs,
    distribution_from_samples,
    id_forms,
    parse_answer,
)

IDS = ["A", "B", "C", "D"]
FORMS = {i: id_forms(i) for i in IDS}


def _chat_choice(*positions: list[tuple[str, float]]) -> dict[str, Any]:
    return {
        "index": 0,
        "message": {"role": "assistant", "content": "x"},
        "logprobs": {
            "content": [
                {
                    "token": pairs[0][0] if pairs else "",
                    "logprob": pairs[0][1] if pairs else 0.0,
                    "top_logprobs": [{"token": t, "logprob": lp} for t, lp in pairs],
                }
                for pairs in positions
            ]
        },
    }


def test_id_forms() -> None:
    forms = id_forms("B")
    for f in ("B", " B", "(B", "B)", "B.", "(B)", "B:", " (B)", " B."):
        assert f in forms
    assert len(forms) == len(set(forms)) == 12
    assert not any("A" in f for f in forms)
    assert "10." in id_forms("10")


def test_chat_logprobs_give_the_normalised_distribution() -> None:
    choice = _chat_choice(
        [("A", math.log(0.5)), (" B", math.log(0.2)), ("(C", math.log(0.1)), ("D.", math.log(0.1))]
    )
    p = distribution_from_logprobs(choice, FORMS)
    assert p is not None
    np.testing.assert_allclose(p, [5 / 9, 2 / 9, 1 / 9, 1 / 9])


def test_forms_of_one_id_add_up() -> None:
    pairs = [("A", 0.3), (" A", 0.3), ("B", 0.2), ("C", 0.1), ("D", 0.1)]
    choice = _chat_choice([(t, math.log(p)) for t, p in pairs])
    p = distribution_from_logprobs(choice, FORMS)
    assert p is not None
    np.testing.assert_allclose(p, [0.6, 0.2, 0.1, 0.1])


def test_the_first_position_mentioning_an_id_is_read() -> None:
    choice = _chat_choice(
        [("The", -0.1), ("An", -2.5)],  # no ID here
        [("A", math.log(0.9)), ("B", math.log(0.1))],
        [("A", math.log(0.1)), ("B", math.log(0.9))],  # later position: ignored
    )
    p = distribution_from_logprobs(choice, {"A": ("A",), "B": ("B",)})
    assert p is not None
    np.testing.assert_allclose(p, [0.9, 0.1])


def test_an_id_missing_from_the_top_k_is_bounded_by_the_smallest_logprob() -> None:
    choice = _chat_choice([("A", math.log(0.7)), ("zebra", math.log(0.1))])
    p = distribution_from_logprobs(choice, {"A": ("A",), "B": ("B",)})
    assert p is not None
    np.testing.assert_allclose(p, [0.7 / 0.8, 0.1 / 0.8])


def test_legacy_completions_logprobs_shape() -> None:
    choice = {
        "text": " B",
        "logprobs": {
            "tokens": ["Answer", " B"],
            "top_logprobs": [
                {"Answer": -0.01, "The": -5.0},
                {" B": math.log(0.75), " A": math.log(0.25)},
            ],
        },
    }
    p = distribution_from_logprobs(choice, {"A": id_forms("A"), "B": id_forms("B")})
    assert p is not None
    np.testing.assert_allclose(p, [0.25, 0.75])


@pytest.mark.parametrize(
    "choice",
    [
        {"message": {"content": "A"}},  # no logprobs key
        {"message": {"content": "A"}, "logprobs": None},
        {"logprobs": {"content": []}},
        {"logprobs": {"content": [{"token": "x", "logprob": -1.0, "top_logprobs": []}]}},
        _chat_choice([("Hello", -0.1), ("World", -3.0)]),  # no label anywhere
        {"logprobs": {"top_logprobs": [{"foo": -0.1}, None, {}]}},
    ],
)
def test_none_when_no_label_appears(choice: dict[str, Any]) -> None:
    assert distribution_from_logprobs(choice, FORMS) is None


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("B", 1),
        (" (B) ", 1),
        ("B.", 1),
        ("C)", 2),
        ("D:", 3),
        ("The answer is (B).", 1),
        ("After thinking, the answer is C", 2),
        ("Answer: D", 3),
        ("answer: option A", 0),
        ("B) because it is four", 1),
        ("A because", 0),
        ("nothing useful", None),
        ("b", None),
        ("", None),
        ("Bob", None),
        ("The answer is a bit unclear", None),  # before: a ValueError ('a' is not an ID)
        ("answer: b", None),
        ("ANSWER IS C", 2),
    ],
)
def test_parse_answer(text: str, index: int | None) -> None:
    assert parse_answer(text, IDS) == index


def test_parse_answer_prefers_the_longest_id() -> None:
    ids = [str(i) for i in range(1, 11)]
    assert parse_answer("10", ids) == 9
    assert parse_answer("The answer is 10.", ids) == 9
    assert parse_answer("1", ids) == 0


def test_distribution_from_samples_counts_with_add_half_smoothing() -> None:
    p = distribution_from_samples(["B", "The answer is B.", "A", "no idea"], ["A", "B", "C"])
    np.testing.assert_allclose(p, np.array([1.5, 2.5, 0.5]) / 4.5)
    assert (p > 0).all()


def test_distribution_from_samples_without_a_parseable_answer_is_uniform() -> None:
    np.testing.assert_allclose(distribution_from_samples(["?", ""], IDS), [0.25] * 4)
    np.testing.assert_allclose(distribution_from_samples([], IDS), [0.25] * 4)


def test_add_usage_sums_integer_fields_and_their_details() -> None:
    """Before, the details (cached and reasoning tokens) of every call were dropped."""
    total: dict[str, Any] = {"prompt_tokens": 1}
    details = {"completion_tokens_details": {"reasoning_tokens": 5}, "cost": 0.5, "flag": True}
    add_usage(total, {"usage": {"prompt_tokens": 2, "completion_tokens": 3, **details}})
    add_usage(total, {"usage": {"prompt_tokens_details": {"cached_tokens": 2}}})
    add_usage(total, {"usage": {"completion_tokens_details": {"reasoning_tokens": 1}}})
    add_usage(total, {"usage": None})
    add_usage(total, {})
    assert total == {
        "prompt_tokens": 3,
        "completion_tokens": 3,
        "cost": 0.5,
        "completion_tokens_details": {"reasoning_tokens": 6},
        "prompt_tokens_details": {"cached_tokens": 2},
    }


class FakeAsk:
    """An async ``ask`` returning canned responses in order, recording each request."""

    def __init__(self, *responses: dict[str, Any]) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, req: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(copy.deepcopy(req))
        return self.responses.pop(0)


BODY = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Answer with a letter."},
        {"role": "user", "content": "original question"},
    ],
    "stream": True,
    "stream_options": {"include_usage": True},
    "n": 3,
    "temperature": 0.0,
}


def _ask(fake: FakeAsk, body: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    return asyncio.run(
        ask_distribution(fake, body or BODY, 1, "permuted question", FORMS, top_logprobs=5)
    )


def test_ask_distribution_reads_logprobs_in_one_call() -> None:
    resp = {"choices": [_chat_choice([("C", math.log(0.8)), ("A", math.log(0.2))])]}
    fake = FakeAsk(resp)
    before = copy.deepcopy(BODY)
    p, got = _ask(fake)
    assert got is resp
    # B and D are not in the top-k: each is bounded by the smallest logprob returned (A's).
    np.testing.assert_allclose(p, np.array([0.2, 0.2, 0.8, 0.2]) / 1.4)
    [req] = fake.requests
    assert req["messages"][1] == {"role": "user", "content": "permuted question"}
    assert req["messages"][0] == BODY["messages"][0]
    assert (req["logprobs"], req["top_logprobs"], req["max_tokens"]) == (True, 5, 2)
    assert "stream" not in req
    assert "stream_options" not in req
    assert "n" not in req
    assert req["temperature"] == 0.0
    assert before == BODY  # the caller's body is not changed


def test_ask_distribution_keeps_max_completion_tokens() -> None:
    body = {**BODY, "max_completion_tokens": 4}
    fake = FakeAsk({"choices": [_chat_choice([("A", -0.1)])]})
    _ask(fake, body)
    assert fake.requests[0]["max_completion_tokens"] == 4
    assert "max_tokens" not in fake.requests[0]


def test_sampling_keeps_max_completion_tokens_alone() -> None:
    """Before, sampling (the upstream gave no logprobs) added max_tokens beside the client's
    max_completion_tokens, a request OpenAI refuses."""
    body = {**BODY, "max_completion_tokens": 40}
    samples = {"choices": [{"index": i, "message": {"content": "B"}} for i in range(8)]}
    fake = FakeAsk({"choices": [{"index": 0, "message": {"content": "B"}}]}, samples)
    _ask(fake, body)
    for req in fake.requests:
        assert req["max_completion_tokens"] == 40
        assert "max_tokens" not in req


@pytest.mark.parametrize(
    "first",
    [
        {"choices": [{"index": 0, "message": {"content": "B"}, "logprobs": None}]},
        {"choices": []},
        {"choices": [_chat_choice([("Well", -0.1)])]},
    ],
)
def test_without_logprobs_it_samples_and_parses(first: dict[str, Any]) -> None:
    answers = ["B", "(B)", "The answer is D.", "B.", "hmm", "A", "B", "B"]
    samples = {"choices": [{"index": i, "message": {"content": a}} for i, a in enumerate(answers)]}
    fake = FakeAsk(first, samples)
    p, got = _ask(fake)
    assert got is samples
    np.testing.assert_allclose(p, np.array([1.5, 5.5, 0.5, 1.5]) / 9.0)
    first_req, second_req = fake.requests
    assert first_req["logprobs"] is True
    assert "logprobs" not in second_req
    assert "top_logprobs" not in second_req
    assert (second_req["n"], second_req["max_tokens"]) == (SAMPLES, 16)
    assert second_req["messages"][1]["content"] == "permuted question"
    assert "stream" not in second_req
