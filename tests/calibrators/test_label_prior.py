"""Tests for calibrators/label_prior.py: hand-computed cases, bounds, state, simulated bias."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibrators.label_prior import (
    CONTENT_FREE,
    BatchCalibrator,
    PriorMatcher,
    apply_prior,
    batch_prior,
    log_normalise,
    prior_match,
    probe_prior,
    probe_prompts,
)
from calibrators.word_pool import WordPool, random_word_strings

log = np.log


def probs(log_prior: np.ndarray) -> np.ndarray:
    return np.exp(log_prior)


def test_log_normalise_one_and_many() -> None:
    np.testing.assert_allclose(log_normalise(log([2.0, 6.0])), log([0.25, 0.75]))
    np.testing.assert_allclose(
        log_normalise(log([[2.0, 6.0], [1.0, 1.0]])), log([[0.25, 0.75], [0.5, 0.5]])
    )


@pytest.mark.parametrize(
    ("a", "match"),
    [
        ([-1.0], "at least 2 labels"),
        ([[[-1.0, -2.0]]], "shape"),
        ([np.nan, -1.0], "NaN"),
        ([], "shape"),
    ],
)
def test_log_normalise_errors(a: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        log_normalise(a)


def test_apply_prior_divides_and_renormalises() -> None:
    # 0.6 / 0.75 = 0.8 and 0.4 / 0.25 = 1.6 -> (1/3, 2/3)
    out = apply_prior(log([0.6, 0.4]), log([0.75, 0.25]))
    np.testing.assert_allclose(np.exp(out), [1 / 3, 2 / 3])
    with pytest.raises(ValueError, match="log_prior has 3 labels but logprobs has 2"):
        apply_prior(log([0.6, 0.4]), log([0.2, 0.3, 0.5]))


# --- contextual and domain-context probes --------------------------------------------------------


def test_probe_prompts_replace_the_last_occurrence_of_the_input() -> None:
    assert probe_prompts("Review: great film\nSentiment:", "great film") == [
        "Review: N/A\nSentiment:",
        "Review: \nSentiment:",
        "Review: [MASK]\nSentiment:",
    ]
    assert probe_prompts("good: good\nSentiment:", "good", ["X"]) == ["good: X\nSentiment:"]
    assert CONTENT_FREE == ("N/A", "", "[MASK]")


@pytest.mark.parametrize(
    ("input_text", "probes", "match"),
    [("", CONTENT_FREE, "test input"), ("absent", CONTENT_FREE, "test input"),
     ("film", [], "non-empty list"), ("film", "N/A", "non-empty list")],
)  # fmt: skip
def test_probe_prompts_errors(input_text: str, probes: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        probe_prompts("Review: film", input_text, probes)  # type: ignore[arg-type]


def test_probe_prior_is_the_mean_probe_distribution() -> None:
    # probes (0.8, 0.2) and (4, 6) normalised to (0.4, 0.6): mean (0.6, 0.4)
    np.testing.assert_allclose(probs(probe_prior(log([[0.8, 0.2], [4.0, 6.0]]))), [0.6, 0.4])
    with pytest.raises(ValueError, match=r"\(N, L\)"):
        probe_prior(log([0.8, 0.2]))


def test_contextual_calibration_end_to_end() -> None:
    prior = probe_prior(log([[0.7, 0.3], [0.9, 0.1], [0.8, 0.2]]))  # mean (0.8, 0.2)
    # (0.6, 0.4) / (0.8, 0.2) = (0.75, 2) -> (3/11, 8/11)
    np.testing.assert_allclose(np.exp(apply_prior(log([0.6, 0.4]), prior)), [3 / 11, 8 / 11])


def test_random_word_strings_shape_and_source() -> None:
    words = ["a", "b", "c"]
    out = random_word_strings(words, np.random.default_rng(0), length=4, n_strings=5)
    assert len(out) == 5
    assert all(len(s.split()) == 4 and set(s.split()) <= set(words) for s in out)
    again = random_word_strings(words, np.random.default_rng(0), length=4, n_strings=5)
    assert out == again
    assert (
        random_word_strings(["x"], np.random.default_rng(1), length=3, n_strings=2) == ["x x x"] * 2
    )
    with pytest.raises(ValueError, match="non-empty list"):
        random_word_strings([], np.random.default_rng(0), length=2)
    with pytest.raises(ValueError, match=">= 1"):
        random_word_strings(words, np.random.default_rng(0), length=0)


def test_word_pool_keeps_recent_words_and_mean_length() -> None:
    pool = WordPool(capacity=4)
    assert pool.mean_length == 0.0
    pool.add("a b c d")
    pool.add("e f")
    assert list(pool.words) == ["c", "d", "e", "f"]
    assert pool.mean_length == 3.0
    strings = pool.probes(np.random.default_rng(3), n_strings=6)
    assert len(strings) == 6
    assert all(len(s.split()) == 3 and set(s.split()) <= {"c", "d", "e", "f"} for s in strings)
    back = WordPool.from_dict(json.loads(json.dumps(pool.to_dict())))
    assert back.to_dict() == pool.to_dict()
    assert back.probes(np.random.default_rng(3), n_strings=6) == strings


def test_word_pool_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        WordPool().probes(np.random.default_rng(0))
    with pytest.raises(ValueError, match="capacity"):
        WordPool(capacity=0)


# --- batch calibration -------------------------------------------------------------------------


def test_batch_prior_prob_and_log_space() -> None:
    rows = log([[0.5, 0.5], [0.8, 0.2]])
    np.testing.assert_allclose(probs(batch_prior(rows)), [0.65, 0.35])
    # geometric means sqrt(0.4), sqrt(0.1), normalised: (2/3, 1/3)
    np.testing.assert_allclose(probs(batch_prior(rows, "log")), [2 / 3, 1 / 3])
    # vocabulary-level scores are normalised over the labels first
    np.testing.assert_allclose(batch_prior(rows - 3.0), batch_prior(rows))
    with pytest.raises(ValueError, match="space"):
        batch_prior(rows, "linear")  # type: ignore[arg-type]


def test_batch_calibrator_hand_computed() -> None:
    cal = BatchCalibrator(2, pseudo_count=0.0)
    np.testing.assert_allclose(probs(cal.log_prior), [0.5, 0.5])
    cal.update(log([8.0, 2.0]))  # vocabulary-level: (0.8, 0.2) over the labels
    np.testing.assert_allclose(probs(cal.log_prior), [0.8, 0.2])
    cal.update(log([0.4, 0.6]))
    assert cal.count == 2
    np.testing.assert_allclose(probs(cal.log_prior), [0.6, 0.4])
    # (0.5, 0.5) / (0.6, 0.4) -> (0.4, 0.6)
    np.testing.assert_allclose(np.exp(cal.calibrate(log([0.5, 0.5]))), [0.4, 0.6])


def test_batch_calibrator_pseudo_count_tempers_the_prior() -> None:
    cal = BatchCalibrator(2, pseudo_count=1.0)
    cal.update(log([[0.8, 0.2], [0.4, 0.6]]))
    a, b = 0.6 ** (2 / 3), 0.4 ** (2 / 3)  # n / (n + k) = 2 / 3
    np.testing.assert_allclose(probs(cal.log_prior), [a / (a + b), b / (a + b)])


def test_batch_calibrator_log_space() -> None:
    cal = BatchCalibrator(2, space="log", pseudo_count=0.0)
    cal.update(log([[0.8, 0.2], [0.2, 0.8]]))
    np.testing.assert_allclose(probs(cal.log_prior), [0.5, 0.5])
    cal.update(log([0.5, 0.5]))  # mean log-probs: (log .8 + log .2 + log .5) / 3 per label
    np.testing.assert_allclose(probs(cal.log_prior), [0.5, 0.5])


@pytest.mark.parametrize("space", ["prob", "log"])
@pytest.mark.parametrize("include", [True, False])
def test_batch_stream_matches_update_and_calibrate(space: str, include: bool) -> None:
    rows = np.random.default_rng(5).normal(size=(12, 3))
    one = BatchCalibrator(3, space=space)  # type: ignore[arg-type]
    one.update(rows[:2])
    two = BatchCalibrator.from_dict(one.to_dict())
    expected = []
    for r in rows[2:]:
        if include:
            one.update(r)
        expected.append(one.calibrate(r))
        if not include:
            one.update(r)
    np.testing.assert_allclose(two.stream(rows[2:], include_current=include), expected, atol=1e-12)
    np.testing.assert_allclose(two.stat, one.stat, atol=1e-12)
    assert two.count == one.count == 12


def test_batch_calibrator_round_trip_is_exact() -> None:
    cal = BatchCalibrator(3, space="log", pseudo_count=2.5)
    cal.update(np.random.default_rng(1).normal(size=(7, 3)))
    d = cal.to_dict()
    back = BatchCalibrator.from_dict(json.loads(json.dumps(d)))
    assert back.to_dict() == d
    nxt = log([0.2, 0.3, 0.5])
    cal.update(nxt)
    back.update(nxt)
    assert back.calibrate(nxt).tolist() == cal.calibrate(nxt).tolist()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_labels": 1}, "n_labels"), ({"n_labels": 2, "space": "lin"}, "space"),
     ({"n_labels": 2, "pseudo_count": -1.0}, "pseudo_count")],
)  # fmt: skip
def test_batch_calibrator_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BatchCalibrator(**kwargs)


def test_online_calibrators_reject_wrong_label_count() -> None:
    for cal in (BatchCalibrator(2), PriorMatcher(2)):
        with pytest.raises(ValueError, match="expected 2 label scores per input, got 3"):
            cal.update([-1.0, -2.0, -3.0])
        with pytest.raises(ValueError, match="NaN"):
            cal.update([-1.0, np.nan])
    with pytest.raises(ValueError, match="stat must hold 2 finite numbers"):
        BatchCalibrator.from_dict({**BatchCalibrator(2).to_dict(), "stat": [0.0]})


# --- prior matching ----------------------------------------------------------------------------


def test_prior_match_hand_computed() -> None:
    # r = pi_1 / pi_2 solves 0.9 / (0.9 + 0.1 r) + 1 / (1 + r) = 1, so r^2 = 9: prior (3/4, 1/4)
    res = prior_match(log([[0.9, 0.1], [0.5, 0.5]]))
    assert res.converged
    np.testing.assert_allclose(probs(res.log_prior), [0.75, 0.25], atol=1e-9)
    calibrated = np.exp(apply_prior(log([[0.9, 0.1], [0.5, 0.5]]), res.log_prior))
    np.testing.assert_allclose(calibrated, [[0.75, 0.25], [0.25, 0.75]], atol=1e-9)


def test_prior_match_with_a_target() -> None:
    # one input (0.8, 0.2) calibrated to (0.6, 0.4): prior ∝ (0.8 / 0.6, 0.2 / 0.4) = (8/11, 3/11)
    res = prior_match(log([[0.8, 0.2]]), target=[3.0, 2.0])
    np.testing.assert_allclose(probs(res.log_prior), [8 / 11, 3 / 11], atol=1e-9)
    short = prior_match(log([[0.9, 0.1], [0.5, 0.5]]), max_iter=1)
    assert (short.converged, short.iterations) == (False, 1)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [((log([0.8, 0.2]),), {}, r"\(N, L\)"), ((log([[0.8, 0.2]]), [1.0, 0.0]), {}, "positive"),
     ((log([[0.8, 0.2]]), [0.5, 0.3, 0.2]), {}, "target"),
     ((log([[0.8, 0.2]]),), {"max_iter": 0}, "max_iter")],
)  # fmt: skip
def test_prior_match_errors(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        prior_match(*args, **kwargs)


def test_prior_matcher_hand_computed() -> None:
    pm = PriorMatcher(2, pseudo_count=0.0, em_steps=10_000)
    np.testing.assert_allclose(probs(pm.log_prior), [0.5, 0.5])
    pm.update(log([[0.9, 0.1], [0.5, 0.5]]))
    np.testing.assert_allclose(probs(pm.log_prior), [0.75, 0.25], atol=1e-9)
    small = PriorMatcher(2, capacity=1, pseudo_count=0.0, em_steps=10_000)
    small.update(log([0.9, 0.1]))
    small.update(log([0.7, 0.3]))  # only the latest input is kept
    np.testing.assert_allclose(probs(small.log_prior), [0.7, 0.3], atol=1e-9)
    assert small.count == 2
    targeted = PriorMatcher(2, target=[3.0, 2.0], pseudo_count=0.0, em_steps=10_000)
    targeted.update(log([0.8, 0.2]))
    np.testing.assert_allclose(targeted.target, [0.6, 0.4])
    np.testing.assert_allclose(probs(targeted.log_prior), [8 / 11, 3 / 11], atol=1e-9)


@pytest.mark.parametrize("include", [True, False])
def test_prior_matcher_stream_matches_update_and_calibrate(include: bool) -> None:
    rows = np.random.default_rng(2).normal(size=(10, 3))
    one, two = PriorMatcher(3, capacity=4), PriorMatcher(3, capacity=4)
    expected = []
    for r in rows:
        if include:
            one.update(r)
        expected.append(one.calibrate(r))
        if not include:
            one.update(r)
    np.testing.assert_allclose(two.stream(rows, include_current=include), expected, atol=1e-12)
    assert two.to_dict() == one.to_dict()


def test_prior_matcher_round_trip_is_exact_after_the_ring_wraps() -> None:
    pm = PriorMatcher(3, target=[1.0, 2.0, 3.0], capacity=3, pseudo_count=0.5, em_steps=2)
    rows = np.random.default_rng(4).normal(size=(8, 3))
    pm.update(rows[:5])
    d = pm.to_dict()
    assert (len(d["recent"]), d["next"]) == (3, 2)
    np.testing.assert_allclose(d["recent"], log_normalise(rows[[3, 4, 2]]))  # slot order
    back = PriorMatcher.from_dict(json.loads(json.dumps(d)))
    assert back.to_dict() == d
    for r in rows[5:]:
        pm.update(r)
        back.update(r)
    assert back.to_dict() == pm.to_dict()
    assert back.calibrate(rows[0]).tolist() == pm.calibrate(rows[0]).tolist()


def test_prior_matcher_errors() -> None:
    with pytest.raises(ValueError, match="capacity and em_steps"):
        PriorMatcher(2, capacity=0)
    with pytest.raises(ValueError, match="target"):
        PriorMatcher(2, target=[0.2, 0.3, 0.5])
    d = PriorMatcher(2, capacity=2).to_dict()
    with pytest.raises(ValueError, match="at most 2 rows"):
        PriorMatcher.from_dict({**d, "recent": [[-1.0, -1.0]] * 3})
    with pytest.raises(ValueError, match="not a write position"):
        PriorMatcher.from_dict({**d, "recent": [[-1.0, -1.0]], "next": 0})


# --- a simulated classifier whose only bias is a label prior ------------------------------------


def simulate(n: int, class_prior: list[float], bias: list[float], seed: int = 0):
    """Exact Bayes posteriors of a 3-class Gaussian problem, then multiplied by ``bias``."""
    rng = np.random.default_rng(seed)
    gold = rng.choice(3, size=n, p=class_prior)
    means = 1.5 * np.eye(3)
    x = means[gold] + rng.normal(size=(n, 3))
    bayes = log_normalise(x @ means.T + log(class_prior))  # equal norms: the quadratic cancels
    return log_normalise(bayes + log(bias)), bayes, gold


def acc(scores: np.ndarray, gold: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == gold))


def test_prior_matching_recovers_a_pure_label_prior_bias() -> None:
    bias = [0.85, 0.1, 0.05]
    biased, bayes, gold = simulate(20_000, [1 / 3] * 3, bias)
    res = prior_match(biased)
    np.testing.assert_allclose(probs(res.log_prior), bias, atol=0.01)
    assert acc(biased, gold) < acc(bayes, gold) - 0.1
    assert acc(apply_prior(biased, res.log_prior), gold) == pytest.approx(
        acc(bayes, gold), abs=0.005
    )
    online = PriorMatcher(3).stream(biased[:4000])
    assert acc(online, gold[:4000]) == pytest.approx(acc(bayes[:4000], gold[:4000]), abs=0.01)


def test_prior_matching_with_the_true_class_prior_as_target() -> None:
    class_prior, bias = [0.5, 0.3, 0.2], [0.1, 0.3, 0.6]
    biased, bayes, gold = simulate(20_000, class_prior, bias, seed=1)
    res = prior_match(biased, target=class_prior)
    np.testing.assert_allclose(probs(res.log_prior), bias, atol=0.01)
    assert acc(apply_prior(biased, res.log_prior), gold) == pytest.approx(
        acc(bayes, gold), abs=0.005
    )


def test_batch_calibration_undercorrects_a_pure_label_prior_bias() -> None:
    # The mean posterior of a biased model is flatter than the bias itself, so dividing it out
    # closes most, not all, of the gap; prior matching (above) closes all of it.
    bias = [0.85, 0.1, 0.05]
    biased, bayes, gold = simulate(20_000, [1 / 3] * 3, bias, seed=2)
    prior = probs(batch_prior(biased))
    assert bias[0] > prior[0] > prior[1] > prior[2] > bias[2]
    raw, best = acc(biased, gold), acc(bayes, gold)
    full = acc(apply_prior(biased, batch_prior(biased)), gold)
    assert raw + 0.6 * (best - raw) < full < best - 0.02
    assert acc(BatchCalibrator(3).stream(biased), gold) == pytest.approx(full, abs=0.005)
