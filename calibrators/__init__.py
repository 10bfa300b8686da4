"""Pure math on probability vectors: numpy only, no I/O, no asyncio.

Never imports ``guard`` or ``policies``; usable alone on arrays of probabilities.
"""

from calibrators.metrics import (
    accuracy,
    expected_calibration_error,
    kl_from_uniform,
    macro_f1,
    order_consistency,
    recall_per_class,
    rstd,
)
from calibrators.permutation import (
    Perm,
    PriorEstimator,
    apply_permutation,
    average_orders,
    cyclic_permutations,
    cyclic_shift,
    debias,
    full_permutations,
    normalise,
    question_prior,
    to_original,
)
from calibrators.planner import McqResult, PermutationPlanner, QuestionRun
from calibrators.position import (
    PositionResult,
    aggregate_scores,
    aggregate_verdicts,
    consistency_rate,
    judge_orders,
)
from calibrators.referential import ReferentialCheck, check_referential

__all__ = [
    "McqResult",
    "Perm",
    "PermutationPlanner",
    "PositionResult",
    "PriorEstimator",
    "QuestionRun",
    "ReferentialCheck",
    "accuracy",
    "aggregate_scores",
    "aggregate_verdicts",
    "apply_permutation",
    "average_orders",
    "check_referential",
    "consistency_rate",
    "cyclic_permutations",
    "cyclic_shift",
    "debias",
    "expected_calibration_error",
    "full_permutations",
    "judge_orders",
    "kl_from_uniform",
    "macro_f1",
    "normalise",
    "order_consistency",
    "question_prior",
    "recall_per_class",
    "rstd",
    "to_original",
]
