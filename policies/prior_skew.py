"""``prior_skew``: a calibration key's prior is far from uniform, or moved since last seen.

A strongly skewed prior means the model leans hard on a position or label; a prior that moved
means the model behind the key probably changed.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator

from calibrators.metrics import kl_from_uniform
from policies.base import Context, Verdict
from policies.registry import BuiltinPolicy, PolicyParams, register


class PriorSkewParams(PolicyParams):
    """``max_kl``: largest KL(prior || uniform) allowed, in nats; ``max_shift``: largest total
    variation distance allowed between the prior and ``ctx.previous_prior``. ``None`` turns a
    check off (not both)."""

    max_kl: float | None = Field(default=0.1, ge=0.0)
    max_shift: float | None = Field(default=0.1, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_check(self) -> PriorSkewParams:
        if self.max_kl is None and self.max_shift is None:
            raise ValueError("max_kl and max_shift are both null: set at least one")
        return self


def _normalised(x: object) -> np.ndarray | None:
    p = np.asarray(x, dtype=np.float64).reshape(-1)
    ok = p.size > 0 and np.all(np.isfinite(p)) and np.all(p >= 0) and p.sum() > 0
    return p / p.sum() if ok else None


@register
class PriorSkew(BuiltinPolicy[PriorSkewParams]):
    """Reads ``evidence["prior"]``; passes when there is none.

    The score is the larger of KL / log(n) (0 uniform, 1 one-hot) and the shift.
    """

    name = "prior_skew"
    params_model = PriorSkewParams

    def check(self, ctx: Context) -> Verdict:
        raw = (ctx.evidence or {}).get("prior")
        prior = None if raw is None else _normalised(raw)
        if prior is None or prior.size < 2:
            return self.passed("no prior")
        kl = kl_from_uniform(prior)
        risk = min(1.0, kl / math.log(prior.size))
        problems = []
        if self.params.max_kl is not None and kl > self.params.max_kl:
            problems.append(f"prior is {kl:.3f} nats from uniform (max {self.params.max_kl})")
        if self.params.max_shift is not None and ctx.previous_prior is not None:
            before = _normalised(ctx.previous_prior)
            if before is None or before.size != prior.size:
                shift = 1.0  # a prior of another shape under the same key: treat as moved
            else:
                shift = float(0.5 * np.abs(prior - before).sum())
            risk = max(risk, min(1.0, shift))
            if shift > self.params.max_shift:
                problems.append(f"prior moved by {shift:.3f} (max {self.params.max_shift})")
        if problems:
            return self.hit("; ".join(problems), risk)
        return self.passed(score=risk)
