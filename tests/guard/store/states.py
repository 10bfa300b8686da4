"""Real calibration states for the store tests: a PriDe key learning, one question at a time."""

from __future__ import annotations

import numpy as np

from calibrators.planner import PermutationPlanner
from guard.store import State

BIASED = np.array([0.1, 0.6, 0.2, 0.1])  # every order answered with the favourite in 2nd place


def pride_question(state: State | None) -> tuple[State, int]:
    """One PriDe question of a 4-option key (an update function for ``Store.update``); returns
    the questions the key has seen."""
    planner = PermutationPlanner.from_dict(state["pride"]) if state else PermutationPlanner(4)
    run = planner.start()
    while batch := run.pending():
        for perm in batch:
            run.observe(perm, BIASED)
    run.result()
    return {**(state or {}), "pride": planner.to_dict()}, planner.started
