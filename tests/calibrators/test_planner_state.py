"""A planner's state as plain JSON, and a state stored by an older calguard."""

from __future__ import annotations

import json

import numpy as np

from calibrators.permutation import normalise
from calibrators.planner import PermutationPlanner
from calibrators.planner_state import NEWER_SETTINGS, planner_from_dict, planner_to_dict

PRIOR = np.array([0.1, 0.5, 0.3, 0.1])


def played(planner: PermutationPlanner, questions: int, seed: int) -> PermutationPlanner:
    rng = np.random.default_rng(seed)
    for _ in range(questions):
        content = rng.dirichlet(np.ones(4))
        run = planner.start()
        while batch := run.pending():
            for perm in batch:
                run.observe(perm, normalise(PRIOR * content[list(perm)]))
        run.result()
    return planner


def test_every_setting_and_table_round_trips() -> None:
    p = played(PermutationPlanner(4, "adaptive", design="auto", value_floor=0.05), 60, 1)
    d = json.loads(json.dumps(planner_to_dict(p)))
    assert (d["design"], d["value_floor"]) == ("auto", 0.05)
    back = planner_from_dict(PermutationPlanner, d)
    assert back.to_dict() == p.to_dict()
    assert back.value.threshold(0) == p.value.threshold(0)
    assert "value_floor" in NEWER_SETTINGS


def test_a_state_from_before_the_value_floor_keeps_its_design_and_takes_the_floor() -> None:
    # Stored by the previous version: design "auto" was its default and is kept as stored;
    # the value floor did not exist, so it takes today's default with an empty table.
    p = played(PermutationPlanner(4, "adaptive", design="auto"), 40, 2)
    old = p.to_dict()
    del old["value_floor"], old["value"]
    del old["harm"]["alpha"], old["harm"]["net_sq"]
    loaded = PermutationPlanner.from_dict(json.loads(json.dumps(old)))
    assert loaded.design == "auto"
    assert loaded.value.floor == PermutationPlanner(4).value.floor
    assert loaded.value.asked.sum() == 0
    assert loaded.harm.alpha == 0.05
    assert loaded.harm.net_sq == loaded.harm.discordant
    np.testing.assert_allclose(loaded.current_prior(), p.current_prior())
    played(loaded, 20, 3)  # and it carries on


def test_a_state_from_before_the_warmup_extension_judges_it_afresh() -> None:
    p = played(PermutationPlanner(4, "adaptive"), 40, 4)
    assert p.sure_at is not None
    assert json.loads(json.dumps(p.to_dict()))["sure_at"] == p.sure_at
    old = p.to_dict()
    del old["sure_at"]
    loaded = PermutationPlanner.from_dict(json.loads(json.dumps(old)))
    assert loaded.sure_at is None  # past its warm-up, so it never matters again
    assert loaded.after_warmup > 0
    played(loaded, 5, 5)
    assert loaded.warmed == p.warmed
