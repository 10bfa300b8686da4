"""Which option order an adaptive question asks next (the planner's ``design`` setting).

- ``far``: the second order moves every option as far as it can from where it was shown (for 4
  options: the shift by 2), so that what is left of a question's own position bias cancels
  rather than adds up; it does not depend on the answer seen, so the evidence it brings is not
  selected by it.
- ``adversarial``: the current favourite goes to the position the prior favours least: if it
  still wins there the decision is robust; if it was riding on its position, this exposes it.
- ``auto``: ``far`` for the second order when the prior is flat (its largest entry under
  :data:`AUTO_PRIOR_RATIO` times its smallest), else ``adversarial``.

Every order after the second is chosen as ``adversarial`` does, whatever the design.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from calibrators.permutation import FloatArray, Perm

Design = Literal["auto", "far", "adversarial"]

# design "auto": a prior whose largest entry is under this many times its smallest is too flat
# to say where the favourite is least favoured; the second order is then the far one.
AUTO_PRIOR_RATIO = 1.5


def next_order(
    design: Design,
    prior: FloatArray,
    answered: Sequence[Perm],
    remaining: Sequence[Perm],
    favourite: int,
) -> Perm:
    """The order to ask next among ``remaining`` (not empty), given the orders ``answered`` so
    far (the first as shown) and the current ``favourite`` (an original option index)."""
    n = len(prior)
    far = design == "far" or (
        design == "auto" and float(prior.max() / prior.min()) < AUTO_PRIOR_RATIO
    )
    if far and len(answered) == 1:
        first = answered[0]
        return max(
            remaining,
            key=lambda perm: min(abs(perm.index(i) - first.index(i)) for i in range(n)),
        )
    return min(remaining, key=lambda perm: prior[perm.index(favourite)])
