"""Classification and judge tasks through the running proxy, against simulated biased models."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from guard.config import Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

LABELS = ["negative", "positive"]
TEMPLATE = "Review: {}\nSentiment:"


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def sentiment_model(text: str) -> dict[str, float] | None:
    """Leans 'Positive' (+1.2 logit) whatever the review says; reads 'good'/'bad' words."""
    if not text.startswith("Review:"):
        return judge_model(text)
    signal = 2.0 * text.count("good") - 2.0 * text.count("bad") - 0.8 * text.count("dull")
    p = _sigmoid(signal + 1.2)
    return {" Positive": p, " Negative": 1.0 - p}


def judge_model(text: str) -> dict[str, float] | None:
    """Prefers whichever response is shown first (+1.5 logit); a 'correct' one is better."""
    m = re.search(r"Response A: (.*)\nResponse B: (.*)\n", text)
    if m is None:
        return None
    quality = [s.count("correct") for s in m.groups()]
    p_a = _sigmoid(quality[0] - quality[1] + 1.5)
    return {"A": p_a, "B": 1.0 - p_a}


@pytest.fixture
def fake() -> FakeUpstreamState:
    return FakeUpstreamState(SimulatedResponder(), text_responder=sentiment_model)


@pytest.fixture
def client(tmp_path: Path, fake: FakeUpstreamState) -> Iterator[openai.OpenAI]:
    with serve_in_thread(create_fake_upstream(fake)) as up:
        settings = Settings(upstream=f"{up}/v1", store=f"sqlite:///{tmp_path / 'c.db'}")
        with (
            serve_in_thread(create_app(settings)) as proxy,
            openai.OpenAI(base_url=f"{proxy}/v1", api_key="t", max_retries=0) as c,
        ):
            yield c


def classify(client: openai.OpenAI, review: str, calibration: str) -> tuple[str, dict[str, Any]]:
    r = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": TEMPLATE.format(review)}],
        extra_body={
            "guard": {
                "task": "classify",
                "labels": LABELS,
                "input": review,
                "calibration": calibration,
            }
        },
    )
    return r.choices[0].message.content or "", dict((r.model_extra or {})["guard"])


MILDLY_BAD = "a dull film"  # signal -0.8: the +1.2 lean makes the raw model say positive


def test_raw_model_is_fooled_by_its_label_prior(client: openai.OpenAI) -> None:
    label, g = classify(client, MILDLY_BAD, "none")
    assert label == "positive"
    assert g["upstream_calls"] == 1


def test_contextual_calibration_divides_out_the_probe_prior(client: openai.OpenAI) -> None:
    label, g = classify(client, MILDLY_BAD, "contextual")
    assert label == "negative"
    assert g["upstream_calls"] == 1 + 3  # the input and the three content-free probes
    assert g["prior"][1] == pytest.approx(_sigmoid(1.2), abs=1e-3)
    _, g2 = classify(client, "a good film", "contextual")
    assert g2["upstream_calls"] == 1  # the probes' answer is kept per key


def test_domain_calibration_uses_random_in_domain_words(
    client: openai.OpenAI, fake: FakeUpstreamState
) -> None:
    reviews = [MILDLY_BAD] + ["a good film" if i % 2 else "a bad film" for i in range(7)]
    results, sent = [], []
    for r in reviews:
        before = len(fake.requests)
        results.append(classify(client, r, "domain")[1])
        sent.append([b["messages"][-1]["content"] for b in fake.requests[before:]])
    # Probes are re-asked as the pool grows: after 1, 2, 4 and 8 inputs... not in between.
    assert [g["upstream_calls"] for g in results] == [21, 21, 21, 1, 21, 1, 1, 1]
    # The fifth input's probes: 20 strings made only of words the key had seen.
    seen_words = {w for r in reviews[:5] for w in r.split()}
    probes = [p for p in sent[4] if p != TEMPLATE.format(reviews[4])]
    assert len(probes) == 20
    for p in probes:
        words = p.removeprefix("Review: ").removesuffix("\nSentiment:").split()
        assert words
        assert set(words) <= seen_words
    # The prior is the mean of the model's answers on those probes; the answer divides it out.
    expected = sum(sentiment_model(p)[" Positive"] for p in probes) / 20  # type: ignore[index]
    g = results[4]
    assert g["prior"][1] == pytest.approx(expected, abs=1e-4)
    ratio = [r / q for r, q in zip(g["raw_probs"], g["prior"], strict=True)]
    assert g["probs"][1] == pytest.approx(ratio[1] / sum(ratio), abs=1e-4)


@pytest.mark.parametrize("calibration", ["batch", "prior-match"])
def test_online_calibrators_learn_the_prior_from_traffic(
    client: openai.OpenAI, calibration: str
) -> None:
    for i in range(20):
        classify(client, "a good film" if i % 2 else "a bad film", calibration)
    label, g = classify(client, MILDLY_BAD, calibration)
    assert label == "negative"
    assert g["prior"][1] > 0.55  # it learned the lean toward positive


def test_classify_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match=r"guard\.labels"):
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"guard": {"task": "classify"}},
        )
    with pytest.raises(openai.BadRequestError, match=r"needs guard\.input"):
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "Review: x\nSentiment:"}],
            extra_body={
                "guard": {"task": "classify", "labels": LABELS, "calibration": "contextual"}
            },
        )


JUDGE = "Which response answers better?\nResponse A: {}\nResponse B: {}\nAnswer A or B."
CANDIDATES = ["an answer", "a correct answer"]


def judge(client: openai.OpenAI, calibration: str) -> tuple[str, dict[str, Any]]:
    r = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": JUDGE.format(*CANDIDATES)}],
        extra_body={
            "guard": {"task": "judge", "candidates": CANDIDATES, "calibration": calibration}
        },
    )
    return r.choices[0].message.content or "", dict((r.model_extra or {})["guard"])


def test_swapped_judge_overrules_the_position_bias_and_flags_it(client: openai.OpenAI) -> None:
    raw, g0 = judge(client, "none")
    assert (raw, g0["upstream_calls"]) == ("A", 1)  # the first position wins, wrongly
    answer, g = judge(client, "swap")
    assert answer == "B"
    assert g["upstream_calls"] == 2
    assert g["consistent"] is False
    assert g["first_position_rate"] == 1.0
    assert [f["policy"] for f in g["flags"]] == ["order_consistency"]


def test_judge_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match=r"guard\.candidates"):
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": JUDGE.format(*CANDIDATES)}],
            extra_body={"guard": {"task": "judge", "candidates": ["not there", "nope"]}},
        )
