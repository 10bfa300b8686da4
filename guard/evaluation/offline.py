"""``calguard eval-offline``: every method side by side on recorded LLM outputs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from calibrators.planner import PermutationPlanner
from guard.errors import ConfigError
from guard.evaluation.hindsight import two_call_ceiling
from guard.evaluation.mcq import evaluate_mcq, verdict_from_rows
from guard.evaluation.recorded import ClassifyRecords, load_recorded
from guard.evaluation.table import format_table

DEFAULT_BUDGETS = (1.5, 2.0, 3.0)
SUMMARY_BUDGET = 2.0  # the planner's default budget: the one the goals are judged at


def report(path: Path, seeds: int, budgets: Sequence[float] = DEFAULT_BUDGETS) -> str:
    rec = load_recorded(path)
    if isinstance(rec, ClassifyRecords):
        # Imported here: the classification evaluation is only needed for such files.
        from guard.evaluation.classify import cold_start, evaluate_classify, evaluation_notes

        head = f"{path.name}: {len(rec)} inputs, labels {rec.label_words}"
        # The cold-start figures average the first 10-50 requests only: they need many more
        # arrival orders than the full-stream table to rank the methods reliably.
        return "\n\n".join(
            [
                format_table(head, evaluate_classify(rec, seeds)),
                "\n".join(evaluation_notes(rec)[1:]),
                format_table(
                    "cold start: accuracy over the first requests of a new key "
                    "(500 arrival orders)",
                    cold_start(rec),
                ),
            ]
        )
    for budget in budgets:  # one the planner refuses is the caller's mistake: say so first
        try:
            PermutationPlanner(rec.n_options, "adaptive", budget=budget)
        except ValueError as exc:
            raise ConfigError(f"--budget {budget:g} for {path.name}: {exc}") from exc
    head = f"{path.name}: {len(rec)} questions, {rec.n_options} options"
    rows = evaluate_mcq(rec, seeds, budgets)
    table = format_table(head, rows)
    verdict = verdict_from_rows(rows, SUMMARY_BUDGET, two_call_ceiling(rec))
    return table if verdict is None else f"{table}\n{verdict.summary()}"
