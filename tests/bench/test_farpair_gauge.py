"""The far-pair gauges of bench.farpair_gauge: the noise share is s^2 / (s^2 + 2 tau^2) for four
options with isotropic own biases and order noise, whatever the key's prior."""

import numpy as np

from bench.farpair_gauge import disagreement, favourite_ratio, noise_share
from calibrators.permutation import cyclic_shift, normalise


def _probs(
    bias_sd: float, noise_sd: float, n: int = 4, questions: int = 1500, flat: bool = False
) -> np.ndarray:
    """(questions, n cyclic orders, n displayed IDs), the simulation's structure."""
    rng = np.random.default_rng(1)
    key = np.zeros(n) if flat else np.log(normalise(np.arange(1.0, n + 1)))
    out = np.empty((questions, n, n))
    for q in range(questions):
        content = rng.normal(0.0, 1.0, n)
        own = key + rng.normal(0.0, bias_sd, n)
        for k in range(n):
            z = own + content[list(cyclic_shift(n, k))] + rng.normal(0.0, noise_sd, n)
            out[q, k] = normalise(np.exp(z - z.max()))
    return out


def test_noise_share_four_options() -> None:
    assert abs(noise_share(_probs(0.5, 0.5)) - 1 / 3) < 0.05
    assert abs(noise_share(_probs(0.3, 0.6)) - 0.36 / (0.36 + 0.18)) < 0.05


def test_noise_share_without_own_bias_is_one() -> None:
    assert noise_share(_probs(0.0, 0.5)) > 0.9


def test_noise_share_five_options() -> None:
    # gains 3.62 (k = 1, 4) and 1.38 (k = 2, 3): 2 s^2 / (2 s^2 + 3.62 tau^2)
    expected = 0.5 / (0.5 + 0.25 * abs(1 - np.exp(-2j * np.pi * 2 / 5)) ** 2)
    assert abs(noise_share(_probs(0.5, 0.5, n=5)) - expected) < 0.06


def test_homoscedastic_noise_favourite_ratio_about_one() -> None:
    assert 0.85 < favourite_ratio(_probs(0.5, 0.5)) < 1.15


def test_identical_orders_never_disagree() -> None:
    p = _probs(0.0, 0.0, questions=50, flat=True)
    assert disagreement(p) == 0.0
