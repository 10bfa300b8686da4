"""Verdicts, contexts, running policies, redaction chaining, deciding, and the registry."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest

import policies
from policies import (
    POLICY_TYPES,
    Action,
    Context,
    PolicyConfigError,
    Verdict,
    apply_redactions,
    build_policies,
    build_policy,
    decide,
    run_policies,
)
from policies.registry import BuiltinPolicy, PolicyParams, register

BUILTINS = {
    "denylist",
    "json_schema",
    "low_confidence",
    "max_length",
    "order_instability",
    "pii",
    "prior_skew",
    "refusal",
    "regex",
    "secrets",
}
REDACTABLE = {"denylist", "pii", "regex", "secrets"}


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2), name


def test_all_is_sorted_and_every_name_exists() -> None:
    assert policies.__all__ == sorted(policies.__all__, key=_isort_key)
    assert len(set(policies.__all__)) == len(policies.__all__)
    for name in policies.__all__:
        assert hasattr(policies, name), name


def test_actions_are_ordered() -> None:
    assert Action.PASS < Action.FLAG < Action.BLOCK
    assert max(Action.FLAG, Action.BLOCK, Action.PASS) is Action.BLOCK


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score": -0.01}, "[0, 1]"),
        ({"score": 1.5}, "[0, 1]"),
        ({"score": math.nan}, "finite"),
        ({"score": math.inf}, "finite"),
        ({"score": "0.5"}, "finite"),
        ({"policy": ""}, "non-empty"),
        ({"action": 7}, "Action"),
    ],
)
def test_verdict_rejects_bad_values(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"action": Action.FLAG, "policy": "p", **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        Verdict(**args)


def test_verdict_is_frozen_and_coerces_int_action() -> None:
    v = Verdict(2, "p", score=1)  # type: ignore[arg-type]
    assert v.action is Action.BLOCK
    assert isinstance(v.score, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.score = 0.5  # type: ignore[misc]


def test_verdict_to_dict() -> None:
    plain = Verdict(Action.FLAG, "low_confidence", "top 0.41 < 0.5", 0.59)
    assert plain.to_dict() == {
        "policy": "low_confidence",
        "action": "flag",
        "reason": "top 0.41 < 0.5",
        "score": 0.59,
    }
    redacted = Verdict(Action.PASS, "pii", redacted="x [REDACTED]")
    assert redacted.to_dict()["action"] == "pass"
    assert redacted.to_dict()["redacted"] == "x [REDACTED]"


def test_context_rejects_unknown_phase() -> None:
    with pytest.raises(ValueError, match="phase"):
        Context("answer", "text")  # type: ignore[arg-type]


def _flag_digits(ctx: Context) -> Verdict:
    hit = any(c.isdigit() for c in ctx.text)
    return Verdict(Action.FLAG if hit else Action.PASS, "digits")


class _Replace:
    """A policy object that rewrites one word and records what it saw."""

    def __init__(self, name: str, old: str, new: str) -> None:
        self.name, self.old, self.new = name, old, new
        self.seen: list[str] = []

    def check(self, ctx: Context) -> Verdict:
        self.seen.append(ctx.text)
        if self.old not in ctx.text:
            return Verdict(Action.PASS, self.name)
        return Verdict(Action.FLAG, self.name, redacted=ctx.text.replace(self.old, self.new))


def test_run_policies_accepts_plain_functions_and_objects_in_order() -> None:
    ctx = Context("response", "call 911")
    verdicts = run_policies([_flag_digits, _Replace("r", "call", "ring")], ctx)
    assert [v.policy for v in verdicts] == ["digits", "r"]
    assert [v.action for v in verdicts] == [Action.FLAG, Action.FLAG]


def test_redactions_chain_and_the_last_one_wins() -> None:
    first, second = _Replace("a", "cat", "dog"), _Replace("b", "dog", "pet")
    third = _Replace("c", "zzz", "!")
    verdicts = run_policies([first, second, third], Context("response", "my cat"))
    assert first.seen == ["my cat"]
    assert second.seen == ["my dog"]  # saw the first policy's rewrite
    assert third.seen == ["my pet"]
    assert apply_redactions("my cat", verdicts) == "my pet"


def test_apply_redactions_without_rewrites_returns_the_text() -> None:
    assert apply_redactions("hello", [Verdict(Action.FLAG, "x")]) == "hello"
    assert apply_redactions("hello", []) == "hello"


def test_run_policies_rejects_a_non_verdict() -> None:
    def broken(ctx: Context) -> Verdict:
        return "ok"  # type: ignore[return-value]

    with pytest.raises(TypeError, match="broken"):
        run_policies([broken], Context("prompt", "hi"))


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ([], Action.PASS),
        ([Action.PASS, Action.PASS], Action.PASS),
        ([Action.PASS, Action.FLAG], Action.FLAG),
        ([Action.FLAG, Action.BLOCK, Action.PASS], Action.BLOCK),
    ],
)
def test_decide_is_the_strongest_action(actions: list[Action], expected: Action) -> None:
    assert decide([Verdict(a, f"p{i}") for i, a in enumerate(actions)]) is expected


def test_every_builtin_is_registered_under_its_name() -> None:
    assert set(POLICY_TYPES) == BUILTINS
    for name, cls in POLICY_TYPES.items():
        assert cls.name == name
        assert cls.params_model.model_config.get("extra") == "forbid"
        assert cls.redactable is (name in REDACTABLE)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        POLICY_TYPES["x"] = BuiltinPolicy  # type: ignore[index]


def test_register_refuses_a_taken_name() -> None:
    class Other(BuiltinPolicy[PolicyParams]):
        name = "regex"

    with pytest.raises(ValueError, match="already taken"):
        register(Other)


VALID = {"type": "max_length", "params": {"max_chars": 10}, "action": "block"}


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({"type": "regx"}, ["'regx'", "valid types are denylist, json_schema", "secrets"]),
        ({"params": {}}, ["unknown policy type None"]),
        ({**VALID, "parms": {}}, ["unknown key 'parms'", "action, params, type"]),
        (
            {"type": "low_confidence", "params": {"treshold": 0.3}},
            ["unknown parameter 'treshold'", "abstain, abstain_text, measure, threshold"],
        ),
        ({"type": "low_confidence", "params": {"threshold": 2}}, ["'threshold'", "less than"]),
        ({"type": "low_confidence", "params": {"measure": "entropy"}}, ["'measure'", "'top'"]),
        ({"type": "json_schema", "params": {"schma": {}}}, ["'schma'", "valid parameters: schema"]),
        ({"type": "json_schema", "params": {}}, ["'schema'", "Field required"]),
        ({"type": "regex", "params": {"patterns": ["("]}}, ["pattern 0", "not a valid regex"]),
        ({"type": "max_length"}, ["max_chars, max_words or both"]),
        ({"type": "prior_skew", "params": {"max_kl": None, "max_shift": None}}, ["at least one"]),
        ({"type": "low_confidence", "action": "redact"}, ["cannot redact", "'flag' or 'block'"]),
        ({"type": "json_schema", "params": {"schema": {}}, "action": "redact"}, ["cannot redact"]),
        ({**VALID, "action": "warn"}, ["unknown action 'warn'", "flag, block"]),
        ({**VALID, "action": 1}, ["action must be a string"]),
        ({**VALID, "params": ["max_chars"]}, ["params must be a mapping"]),
        (
            {"type": "low_confidence", "params": {"abstain": True}, "action": "block"},
            ["abstain has no effect"],
        ),
    ],
)
def test_build_policy_errors_name_the_problem(spec: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(PolicyConfigError) as info:
        build_policy(spec)
    for name in names:
        assert name in str(info.value)


def test_build_policy_defaults() -> None:
    policy = build_policy({"type": "pii", "params": None})  # YAML `params:` left empty
    assert policy.name == "pii"
    verdict = policy.check(Context("response", "write to a@b.io"))
    assert verdict.action is Action.FLAG
    assert verdict.redacted is None


def test_build_policies_names_the_entry() -> None:
    built = build_policies([VALID, {"type": "refusal"}])
    assert [p.name for p in built] == ["max_length", "refusal"]
    with pytest.raises(PolicyConfigError, match=r"^policies\[1\]: unknown policy type 'nope'"):
        build_policies([VALID, {"type": "nope"}])


def test_built_policies_compose_with_run_policies() -> None:
    chain = build_policies(
        [
            {"type": "pii", "action": "redact"},
            {"type": "denylist", "params": {"words": ["secret"]}, "action": "redact"},
            {"type": "max_length", "params": {"max_chars": 5}, "action": "block"},
        ]
    )
    text = "my secret is a@b.io"
    verdicts = run_policies(chain, Context("response", text))
    assert apply_redactions(text, verdicts) == "my [REDACTED] is [REDACTED]"
    assert decide(verdicts) is Action.BLOCK
