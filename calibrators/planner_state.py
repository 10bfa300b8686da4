"""A :class:`~calibrators.planner.PermutationPlanner`'s state as plain JSON, and back.

The store keeps one such dict per calibration key. A state stored by an older calguard lacks the
settings added since (:data:`NEWER_SETTINGS`) and the pieces of state that came with them: it
loads with today's defaults for those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from calibrators.call_value import CallValue
from calibrators.contrast_prior import ContrastPrior
from calibrators.drift import DriftCheck
from calibrators.gaussian_pool import GaussianPool
from calibrators.harm import HarmCheck
from calibrators.permutation import PriorEstimator
from calibrators.planner_settings import planner_settings

if TYPE_CHECKING:
    from calibrators.planner import PermutationPlanner

# Settings added after states were first stored: a stored state without them takes the defaults.
NEWER_SETTINGS = (
    "max_warmup",
    "prior_confidence",
    "design",
    "harm_check",
    "pair_prior",
    "value_floor",
    "pooling",
    "shown_prior",
    "drift_check",
)


def relearn(p: PermutationPlanner) -> None:
    """Make ``p`` forget what it learned of its model (the prior, the pooling's covariances,
    the harm and value evidence, the drift check's sums): each takes a new planner's, and the
    warm-up starts again; the settings, the threshold and the spending so far stay, so the
    budget keeps counting every call. (Made here, not by a new planner, whose settings check
    would refuse a copy holding one request's own budget below the refresh's cost.)"""
    p.estimator = PriorEstimator(p.n, p.estimator.max_count)
    p.contrast = ContrastPrior(p.n)
    p.gauss = GaussianPool(p.n)
    p.harm = HarmCheck()
    p.value = CallValue(p.value.floor)
    p.drift = DriftCheck(p.n)
    p.warmed, p.after_warmup, p.sure_at = 0, 0, None
    p.relearned += 1


def planner_to_dict(p: PermutationPlanner) -> dict[str, Any]:
    settings = planner_settings(p)
    del settings["max_count"]  # kept by the estimator's own state
    return {
        "n": p.n,
        "method": p.method,
        **settings,
        "started": p.started,
        "spent": p.spent,
        "warmed": p.warmed,
        "after_warmup": p.after_warmup,
        "sure_at": p.sure_at,
        "estimator": p.estimator.to_dict(),
        "contrast": p.contrast.to_dict(),
        "harm": p.harm.to_dict(),
        "value": p.value.to_dict(),
        "gauss": p.gauss.to_dict(),
        "drift": p.drift.to_dict(),
        "relearned": p.relearned,
    }


def planner_from_dict(cls: type[PermutationPlanner], d: dict[str, Any]) -> PermutationPlanner:
    est = PriorEstimator.from_dict(d["estimator"])
    p = cls(
        int(d["n"]),
        d["method"],
        warmup=int(d["warmup"]),
        alpha=float(d["alpha"]),
        budget=float(d["budget"]),
        threshold=float(d["threshold"]),
        max_threshold=float(d["max_threshold"]),
        lr=float(d["lr"]),
        max_count=est.max_count,
        # Stored before these settings existed: today's defaults.
        **{k: d[k] for k in NEWER_SETTINGS if k in d},
    )
    p.estimator = est
    if "contrast" in d:
        p.contrast = ContrastPrior.from_dict(p.n, d["contrast"])
    if "harm" in d:
        p.harm = HarmCheck.from_dict(d["harm"])
    if "value" in d:
        p.value = CallValue.from_dict(d["value"])
    if "gauss" in d:  # stored before the Gaussian pooling: learned afresh
        p.gauss = GaussianPool.from_dict(p.n, d["gauss"])
    if "drift" in d:  # stored before the drift check: it starts watching now
        p.drift = DriftCheck.from_dict(p.n, d["drift"])
    p.relearned = int(d.get("relearned", 0))
    p.started, p.spent = int(d["started"]), int(d["spent"])
    p.warmed, p.after_warmup = int(d["warmed"]), int(d["after_warmup"])
    sure_at = d.get("sure_at")  # stored before the warm-up extension: judged afresh
    p.sure_at = None if sure_at is None else int(sure_at)
    return p
