"""guard.calibrations: calibration names by task, checked with suggestions; custom label
calibrators registered for classify."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from calibrators.label_prior import BatchCalibrator, PriorMatcher
from calibrators.planner_settings import METHODS
from guard.calibrations import (
    CALIBRATIONS,
    TASK_NAMES,
    check_calibration,
    check_task,
    register_calibration,
)
from guard.config import RouteConfig
from guard.request import parse_guard


class _Uniform:
    """A label calibrator that changes nothing (the shape of BatchCalibrator)."""

    def __init__(self, n_labels: int) -> None:
        self.n_labels = n_labels

    def update(self, logprobs: Any) -> None:
        return None

    def calibrate(self, logprobs: Any) -> Any:
        return np.asarray(logprobs, dtype=float)

    @property
    def log_prior(self) -> Any:
        return np.full(self.n_labels, -np.log(self.n_labels))

    def to_dict(self) -> dict[str, Any]:
        return {"n_labels": self.n_labels}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Uniform:
        return cls(d["n_labels"])


@pytest.fixture
def registered() -> Iterator[str]:
    """A custom classify calibration registered for one test, removed after it."""
    name = "test-uniform"
    before = {task: dict(names) for task, names in CALIBRATIONS.items()}
    register_calibration("classify", name, _Uniform)
    yield name
    CALIBRATIONS["classify"].pop(name, None)
    assert before == CALIBRATIONS


def test_mcq_names_are_the_planners_methods() -> None:
    assert tuple(CALIBRATIONS["mcq"]) == METHODS
    assert all(v is None for v in CALIBRATIONS["mcq"].values())


def test_classify_online_calibrators_are_the_label_prior_classes() -> None:
    assert CALIBRATIONS["classify"]["batch"] is BatchCalibrator
    assert CALIBRATIONS["classify"]["prior-match"] is PriorMatcher
    assert set(CALIBRATIONS["classify"]) == {"batch", "prior-match", "contextual", "domain", "none"}
    assert set(CALIBRATIONS["judge"]) == {"swap", "none"}


def test_every_task_with_calibrations_is_a_task_name() -> None:
    assert set(CALIBRATIONS) <= set(TASK_NAMES)


@pytest.mark.parametrize(("task", "names"), [(t, list(n)) for t, n in CALIBRATIONS.items()])
def test_every_builtin_name_checks(task: str, names: list[str]) -> None:
    for name in names:
        assert check_calibration(task, name) == name


@pytest.mark.parametrize(
    ("task", "typo", "suggestion"),
    [
        ("mcq", "cyclc", "cyclic"),
        ("classify", "prior_match", "prior-match"),
        ("judge", "swp", "swap"),
    ],
)
def test_unknown_name_suggests_the_closest_and_lists_all(
    task: str, typo: str, suggestion: str
) -> None:
    with pytest.raises(ValueError, match="is not a calibration") as info:
        check_calibration(task, typo)
    msg = str(info.value)
    assert f"(did you mean {suggestion!r}?)" in msg
    assert msg.endswith("use one of " + ", ".join(CALIBRATIONS[task]))


def test_a_name_of_another_task_is_not_accepted() -> None:
    with pytest.raises(ValueError, match="not a calibration for task mcq"):
        check_calibration("mcq", "batch")


def test_no_suggestion_when_nothing_is_close() -> None:
    with pytest.raises(ValueError, match="is not a calibration") as info:
        check_calibration("judge", "zzzzzzzz")
    assert "did you mean" not in str(info.value)


def test_check_task() -> None:
    assert check_task("judge") == "judge"
    with pytest.raises(ValueError, match=r"did you mean 'judge'\?"):
        check_task("judg")


def test_registered_calibration_is_usable_everywhere(registered: str) -> None:
    assert CALIBRATIONS["classify"][registered] is _Uniform
    assert check_calibration("classify", registered) == registered
    assert parse_guard({"task": "classify", "calibration": registered}).calibration == registered
    assert RouteConfig(classify=registered).classify == registered
    with pytest.raises(ValueError, match="not a calibration for task mcq"):
        check_calibration("mcq", registered)


def test_the_builtin_batch_calibrator_has_the_registrable_shape() -> None:
    name = "test-batch-again"
    try:
        register_calibration("classify", name, BatchCalibrator)
        assert CALIBRATIONS["classify"][name] is BatchCalibrator
    finally:
        CALIBRATIONS["classify"].pop(name, None)


@pytest.mark.parametrize("task", ["mcq", "judge", "none"])
def test_only_classify_takes_custom_calibrations(task: str) -> None:
    with pytest.raises(ValueError, match="register them for 'classify'"):
        register_calibration(task, "test-x", _Uniform)
    assert "test-x" not in CALIBRATIONS.get(task, {})


@pytest.mark.parametrize("missing", ["update", "calibrate", "to_dict", "from_dict"])
def test_a_class_without_the_calibrator_methods_is_rejected(missing: str) -> None:
    methods = {m: getattr(_Uniform, m) for m in ("update", "calibrate", "to_dict")}
    methods["from_dict"] = classmethod(lambda cls, d: cls())
    del methods[missing]
    partial = type("Partial", (), methods)
    with pytest.raises(TypeError, match=f"no {missing}\\(\\)"):
        register_calibration("classify", "test-partial", partial)
    assert "test-partial" not in CALIBRATIONS["classify"]


def test_a_non_callable_attribute_is_not_a_method() -> None:
    bad = type("Bad", (), {"update": 1, "calibrate": 2, "to_dict": 3, "from_dict": 4})
    with pytest.raises(TypeError, match="not a label calibrator"):
        register_calibration("classify", "test-bad", bad)
    assert "test-bad" not in CALIBRATIONS["classify"]
