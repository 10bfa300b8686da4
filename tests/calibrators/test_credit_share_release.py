"""The credit share (QuestionRun.undecided / planner.undecided) follows its question: rebound
to another copy of the state, or stopped before its first answer (defects a review found)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from calibrators.permutation import normalise
from calibrators.planner import PermutationPlanner, QuestionRun
from guard.tasks.mcq import ask_orders

# Every order prefers what it shows first, slightly: the orders never agree, the margin stays
# small, and the planner always wants another order.
FIRST = normalise(np.array([0.28, 0.24, 0.24, 0.24]))


def _planner() -> PermutationPlanner:
    # No warm-up, no refresh, no floor, no harm check: the budget guard alone decides.
    return PermutationPlanner(
        4, "adaptive", warmup=0, alpha=0.0, budget=2.0, value_floor=0.0, harm_check=False
    )


def _drive(run: QuestionRun) -> None:
    while batch := run.pending():
        for perm in batch:
            run.observe(perm, FIRST)


def test_rebind_moves_the_undecided_share_with_the_run() -> None:
    """rebind() (public: 'continue against another copy of the planner state') leaves the
    share on the old copy and takes it off the new one: the old copy leaks +1, the new one
    goes negative."""
    old = _planner()
    run = old.start()
    new = PermutationPlanner.from_dict(old.to_dict())
    run.rebind(new)
    _drive(run)
    assert old.undecided == 0
    assert new.undecided == 0


def test_questions_rebound_to_a_fresh_copy_never_overspend_the_budget() -> None:
    """A negative count makes the share negative: the guard then lets a copy spend beyond its
    budget (without the share, the guard held the mean at 2)."""
    old = _planner()
    runs = [old.start() for _ in range(10)]
    fresh = PermutationPlanner.from_dict(old.to_dict())  # counts their planning already
    for run in runs:
        run.rebind(fresh)
    for run in runs:
        _drive(run)
    assert fresh.mean_calls <= fresh.budget + 1e-9


def test_a_question_cancelled_before_its_first_answer_releases_its_share() -> None:
    """The proxy's request task cancelled (client gone, deadline) while the first order is
    being asked: nothing is in flight any more, yet the share is kept."""
    planner = _planner()
    run = planner.start()

    async def never(perm):  # type: ignore[no-untyped-def]
        await asyncio.sleep(3600)
        raise AssertionError

    async def main() -> None:
        task = asyncio.create_task(ask_orders(run, never))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert planner.undecided == 0


def test_inspect_sample_limit_on_the_first_order_releases_the_share() -> None:
    """inspect: one planner per eval; a sample limit re-raised by the solver's gather stops
    the sample at once, and its share stays for the rest of the eval."""
    pytest.importorskip("inspect_ai")
    from inspect_ai.util import LimitExceededError

    from guard.integrations.inspect.solver import _gather

    planner = _planner()
    run = planner.start()

    async def limited(perm):  # type: ignore[no-untyped-def]
        raise LimitExceededError("token", value=10, limit=5)

    async def main() -> None:
        with pytest.raises(LimitExceededError):
            await ask_orders(run, limited, _gather)

    asyncio.run(main())
    assert planner.undecided == 0
