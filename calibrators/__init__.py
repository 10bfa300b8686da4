"""Pure math on probability vectors: numpy only, no I/O, no asyncio.

Never imports ``guard`` or ``policies``; usable alone on arrays of probabilities.
"""

from calibrators.label_prior import (
    CONTENT_FREE,
    BatchCalibrator,
    PriorMatch,
    PriorMatcher,
    apply_prior,
    batch_prior,
    log_normalise,
    prior_match,
    probe_prior,
    probe_prompts,
)
from calibrators.label_scores import (
    LabelScores,
    fill_missing,
    label_scores,
    surface_forms,
)
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
    counts_distribution,
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
from calibrators.word_pool import WordPool, random_word_strings

__all__ = [
    "CONTENT_FREE",
    "BatchCalibrator",
    "LabelScores",
    "McqResult",
    "Perm",
    "PermutationPlanner",
    "PositionResult",
    "PriorEstimator",
    "PriorMatch",
    "PriorMatcher",
    "QuestionRun",
    "ReferentialCheck",
    "WordPool",
    "accuracy",
    "aggregate_scores",
    "aggregate_verdicts",
    "apply_permutation",
    "apply_prior",
    "average_orders",
    "batch_prior",
    "check_referential",
    "consistency_rate",
    "counts_distribution",
    "cyclic_permutations",
    "cyclic_shift",
    "debias",
    "expected_calibration_error",
    "fill_missing",
    "full_permutations",
    "judge_orders",
    "kl_from_uniform",
    "label_scores",
    "log_normalise",
    "macro_f1",
    "normalise",
    "order_consistency",
    "prior_match",
    "probe_prior",
    "probe_prompts",
    "question_prior",
    "random_word_strings",
    "recall_per_class",
    "rstd",
    "surface_forms",
    "to_original",
]
