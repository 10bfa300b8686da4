"""The noise-shape gauge of bench.planner_variants: low where a question's own position bias
dominates what varies across its orders, about 1 where order noise alone does."""

import numpy as np

from bench.planner_variants import GatedConcentration, NoiseShape
from calibrators.permutation import cyclic_shift, normalise


def _gauge(bias_sd: float, noise_sd: float, questions: int = 400, n: int = 4) -> float:
    rng = np.random.default_rng(0)
    shape = NoiseShape(n)
    key = np.log(np.array([0.1, 0.4, 0.3, 0.2]))
    for _ in range(questions):
        content = rng.normal(0.0, 1.0, n)
        own = key + rng.normal(0.0, bias_sd, n)
        obs = []
        for k in range(n):
            perm = cyclic_shift(n, k)
            z = own + content[list(perm)] + rng.normal(0.0, noise_sd, n)
            obs.append((perm, normalise(np.exp(z - z.max()))))
        shape.update(obs)
    r = shape.ratio()
    assert r is not None
    return r


def test_noise_alone_gives_about_one() -> None:
    assert 0.85 < _gauge(0.0, 0.5) < 1.15


def test_own_bias_lowers_it() -> None:
    # expected: sigma^2 / (sigma^2 + n * tau^2 * (n-1)/n ... ) -- well under one
    assert _gauge(0.5, 0.3) < 0.3


def test_key_prior_is_divided_out() -> None:
    # the key's prior alone (no own bias) is not counted as the question's own bias
    assert _gauge(0.0, 0.3) > 0.85


def test_gate_closed_before_evidence() -> None:
    assert not GatedConcentration(4).gate()
