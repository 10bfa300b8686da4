"""``low_confidence``: the calibrated answer is a near coin-flip; flag it, or abstain."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from policies.base import Context, Verdict
from policies.registry import BuiltinPolicy, PolicyConfigError, PolicyParams, register


class LowConfidenceParams(PolicyParams):
    """``threshold``: hit when the measure is below it; ``measure``: ``"top"`` (the calibrated
    probability of the answer) or ``"margin"`` (top minus runner-up); ``abstain``: when true the
    verdict carries ``abstain_text`` as the text to send instead of the answer."""

    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    measure: Literal["top", "margin"] = "top"
    abstain: bool = False
    abstain_text: str = "I am not sure."


@register
class LowConfidence(BuiltinPolicy[LowConfidenceParams]):
    """Reads ``evidence["probs"]``; passes when there are none (an uncalibrated request).

    The score is the risk ``1 - measure``.
    """

    name = "low_confidence"
    params_model = LowConfidenceParams

    def __init__(self, params: LowConfidenceParams | None = None, action: str = "flag") -> None:
        super().__init__(params, action)
        if self.params.abstain and self.action == "block":
            raise PolicyConfigError(
                f"policy {self.name!r}: abstain has no effect with action 'block' (nothing is "
                "sent); use action 'flag' to answer with the abstention text"
            )

    def check(self, ctx: Context) -> Verdict:
        probs = (ctx.evidence or {}).get("probs")
        if not probs:
            return self.passed("no calibrated probabilities")
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        if not (np.all(np.isfinite(p)) and np.all(p >= 0) and p.sum() > 0):
            return self.hit("the calibrated probabilities are not a distribution")
        p = np.sort(p / p.sum())[::-1]
        top = float(p[0])
        value = top - float(p[1]) if self.params.measure == "margin" and p.size > 1 else top
        label = "margin" if self.params.measure == "margin" else "top probability"
        risk = min(1.0, max(0.0, 1.0 - value))
        if value >= self.params.threshold:
            return self.passed(f"{label} {value:.3f} >= {self.params.threshold}", risk)
        abstention = self.params.abstain_text if self.params.abstain else None
        return self.hit(f"{label} {value:.3f} < {self.params.threshold}", risk, abstention)
