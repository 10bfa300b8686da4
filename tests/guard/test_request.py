"""guard.request: the ``guard`` object (a union keyed on task) and the minimal body checks."""

from __future__ import annotations

from typing import Any

import pytest

from guard.errors import InvalidRequestError
from guard.request import (
    AutoOptions,
    ClassifyOptions,
    JudgeOptions,
    McqOptions,
    NoTask,
    check_body,
    check_chat_body,
    parse_guard,
    split_guard,
)


def _invalid(raw: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        parse_guard(raw)
    assert info.value.status == 400
    return info.value


def test_absent_guard_is_auto_detection_with_defaults() -> None:
    opts = parse_guard(None)
    assert type(opts) is AutoOptions
    assert (opts.task, opts.calibration, opts.options, opts.budget) == (None, None, None, None)


def test_guard_without_task_is_auto_with_its_fields() -> None:
    opts = parse_guard({"options": ["x", "y"], "calibration": "cyclic", "budget": 1.5})
    assert type(opts) is AutoOptions
    assert (opts.options, opts.calibration, opts.budget) == (["x", "y"], "cyclic", 1.5)


@pytest.mark.parametrize(
    ("raw", "cls"),
    [
        ({"task": "mcq", "options": ["a", "b", "c"], "calibration": "full"}, McqOptions),
        ({"task": "classify", "labels": ["pos", "neg"], "input": "great"}, ClassifyOptions),
        ({"task": "judge", "candidates": ["one", "two"], "calibration": "swap"}, JudgeOptions),
        ({"task": "none"}, NoTask),
    ],
)
def test_each_task_variant(raw: dict[str, Any], cls: type) -> None:
    opts = parse_guard(raw)
    assert type(opts) is cls
    assert opts.task == raw["task"]
    for field, value in raw.items():
        assert getattr(opts, field) == value


def test_classify_fields_are_not_accepted_on_mcq() -> None:
    err = _invalid({"task": "mcq", "labels": ["a", "b"]})
    assert err.param == "guard.labels"


def test_unknown_task_suggests_the_closest() -> None:
    err = _invalid({"task": "clasify"})
    assert err.param == "guard.task"
    assert err.code == "invalid_guard"
    assert "did you mean 'classify'?" in err.message
    assert "mcq, classify, judge, none" in err.message


def test_task_that_is_not_a_string() -> None:
    err = _invalid({"task": 3})
    assert err.param == "guard.task"


@pytest.mark.parametrize("task", [None, "mcq", "classify", "judge", "none"])
def test_unknown_field_is_named_guard_field(task: str | None) -> None:
    raw: dict[str, Any] = {"colour": "red"}
    if task is not None:
        raw["task"] = task
    err = _invalid(raw)
    assert err.param == "guard.colour"
    assert err.message.startswith("guard.colour: ")
    assert err.code == "invalid_guard"


@pytest.mark.parametrize(
    ("task", "good", "bad"),
    [
        ("mcq", "pride", "batch"),
        ("classify", "batch", "pride"),
        ("classify", "prior-match", "swap"),
        ("judge", "swap", "cyclic"),
    ],
)
def test_calibration_is_checked_against_its_own_task(task: str, good: str, bad: str) -> None:
    assert parse_guard({"task": task, "calibration": good}).calibration == good
    err = _invalid({"task": task, "calibration": bad})
    assert err.param == "guard.calibration"
    assert f"is not a calibration for task {task}" in err.message


def test_auto_calibration_is_an_mcq_calibration_with_a_suggestion() -> None:
    err = _invalid({"calibration": "prid"})
    assert err.param == "guard.calibration"
    assert "did you mean 'pride'?" in err.message


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ({"task": "mcq", "options": ["only one"]}, "guard.options"),
        ({"task": "mcq", "options": [str(i) for i in range(11)]}, "guard.options"),
        ({"options": ["only one"]}, "guard.options"),
        ({"task": "classify", "labels": ["one"]}, "guard.labels"),
        ({"task": "judge", "candidates": ["one"]}, "guard.candidates"),
        ({"task": "mcq", "budget": 0.5}, "guard.budget"),
    ],
)
def test_field_constraints_name_the_field(raw: dict[str, Any], param: str) -> None:
    err = _invalid(raw)
    assert err.param == param
    assert err.message.startswith(param + ": ")


def test_guard_that_is_not_an_object() -> None:
    err = _invalid(["mcq"])
    assert err.param == "guard"


def test_options_are_frozen() -> None:
    opts = parse_guard({"task": "mcq"})
    with pytest.raises(ValueError, match="frozen"):
        opts.calibration = "full"  # type: ignore[misc]


def test_split_guard_removes_guard_and_keeps_the_rest_untouched() -> None:
    body = {"model": "m", "messages": [], "temperature": 0, "guard": {"task": "none"}}
    rest, opts = split_guard(body)
    assert rest == {"model": "m", "messages": [], "temperature": 0}
    assert type(opts) is NoTask
    assert "guard" in body  # the caller's body is not mutated
    rest, opts = split_guard({"model": "m"})
    assert type(opts) is AutoOptions


def _chat_error(body: dict[str, Any]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        check_chat_body(body)
    return info.value


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "", "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": 3, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": "hello"}, "messages"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}, "hi"]}, "messages[1]"),
        ({"model": "m", "messages": [{"content": "no role"}]}, "messages[0]"),
        ({"model": "m", "messages": [{"role": 1, "content": "x"}]}, "messages[0]"),
    ],
)
def test_check_chat_body_names_the_param(body: dict[str, Any], param: str) -> None:
    assert _chat_error(body).param == param


def test_check_chat_body_accepts_a_minimal_body() -> None:
    check_chat_body({"model": "m", "messages": [{"role": "user"}]})


def test_check_body() -> None:
    check_body({"model": "m", "prompt": ""}, "prompt")
    with pytest.raises(InvalidRequestError) as info:
        check_body({"model": "m"}, "prompt")
    assert info.value.param == "prompt"
    with pytest.raises(InvalidRequestError) as info:
        check_body({"prompt": "x"}, "prompt")
    assert info.value.param == "model"
