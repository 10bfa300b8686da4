"""``order_instability``: the answer changed when the options or candidates were reordered."""

from __future__ import annotations

from collections import Counter

from policies.base import Context, Verdict
from policies.registry import BuiltinPolicy, PolicyParams, register


class OrderInstabilityParams(PolicyParams):
    """No parameters."""


@register
class OrderInstability(BuiltinPolicy[OrderInstabilityParams]):
    """Hits when ``evidence["consistent"]`` is False (judge) or the per-order answers,
    ``evidence["order_answers"]`` (or the judge's ``order_winners``), are not all the same.

    The score is the share of orders that disagree with the most common answer (1.0 when only
    ``consistent`` is known). Passes without evidence or with a single order.
    """

    name = "order_instability"
    params_model = OrderInstabilityParams

    def check(self, ctx: Context) -> Verdict:
        ev = ctx.evidence or {}
        answers = ev.get("order_answers")
        if answers is None:
            answers = ev.get("order_winners")
        if answers:
            # None is a tie in judge evidence; it counts as an answer of its own.
            counts = Counter(answers)
            if len(counts) > 1:
                agree = counts.most_common(1)[0][1]
                risk = 1.0 - agree / len(answers)
                shown = ", ".join("tie" if a is None else str(a) for a in answers)
                return self.hit(f"answer changed across {len(answers)} orders: {shown}", risk)
        if ev.get("consistent") is False:
            return self.hit("the verdict changed with the order of the candidates")
        return self.passed()
