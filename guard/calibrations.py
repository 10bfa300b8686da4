"""Calibration names by task: the one source of truth for what ``guard.calibration`` and a
route's ``mcq`` / ``classify`` / ``judge`` may say.

The built-in names come from :mod:`calibrators` itself (the planner's methods, the label
calibrators, the judge's position swap). Add a label calibrator with
:func:`register_calibration`: any class with ``__init__(n_labels)``, ``update(logprobs)``,
``calibrate(logprobs)``, ``log_prior``, ``to_dict()`` and ``from_dict(d)`` (the shape of
:class:`calibrators.label_prior.BatchCalibrator`) becomes usable from YAML, ``create_app``
and ``wrap`` under its name.
"""

from __future__ import annotations

import difflib
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from calibrators.label_prior import BatchCalibrator, PriorMatcher
from calibrators.planner_settings import METHODS

FloatArray = npt.NDArray[np.float64]


class LabelCalibrator(Protocol):
    """An online label-prior calibrator, persisted per calibration key."""

    def update(self, logprobs: npt.ArrayLike) -> None: ...

    def calibrate(self, logprobs: npt.ArrayLike) -> FloatArray: ...

    @property
    def log_prior(self) -> FloatArray: ...

    def to_dict(self) -> dict[str, Any]: ...


# task -> name -> the online calibrator class, or None where the task's own code does the work
# (the MCQ planner's methods, probe-based label priors, the judge's swap, "none").
CALIBRATIONS: dict[str, dict[str, Any]] = {
    "mcq": dict.fromkeys(METHODS),
    "classify": {
        "batch": BatchCalibrator,
        "prior-match": PriorMatcher,
        "contextual": None,
        "domain": None,
        "none": None,
    },
    "judge": {"swap": None, "none": None},
}
TASK_NAMES = ("mcq", "classify", "judge", "none")
# Entries of a key's state beside its methods' (the domain word pool, the inputs seen, the
# traffic counts): no calibration may take these names.
STATE_ENTRIES = ("pool", "seen", "traffic")


def register_calibration(task: str, name: str, calibrator: type) -> None:
    """Make ``name`` a calibration of ``task`` (``classify``: an online label calibrator)."""
    if task != "classify":
        raise ValueError("custom calibrations are label calibrators: register them for 'classify'")
    if name in STATE_ENTRIES:
        raise ValueError(f"{name!r} names an entry of the stored state: choose another name")
    for method in ("update", "calibrate", "to_dict", "from_dict"):
        if not callable(getattr(calibrator, method, None)):
            raise TypeError(f"{calibrator!r} has no {method}(): not a label calibrator")
    CALIBRATIONS[task][name] = calibrator


def closest(name: str, names: list[str] | tuple[str, ...]) -> str:
    """' (did you mean X?)' for the closest of ``names``, or ''."""
    match = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_calibration(task: str, name: str) -> str:
    """``name`` if it is a calibration of ``task``; else ValueError naming the valid ones."""
    names = list(CALIBRATIONS[task])
    if name not in names:
        raise ValueError(
            f"{name!r} is not a calibration for task {task}{closest(name, names)}; "
            f"use one of {', '.join(names)}"
        )
    return name


def check_task(name: str) -> str:
    if name not in TASK_NAMES:
        raise ValueError(
            f"{name!r} is not a task{closest(name, TASK_NAMES)}; use one of {', '.join(TASK_NAMES)}"
        )
    return name
