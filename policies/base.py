"""The policy contract: a :class:`Context` goes in, a :class:`Verdict` comes out.

A policy is anything with a ``name`` and a ``check(ctx) -> Verdict`` method, or a plain function
``f(ctx) -> Verdict``. :func:`run_policies` runs a list of them, :func:`decide` turns their
verdicts into one action and :func:`apply_redactions` into the text that goes out.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable


class Action(enum.IntEnum):
    """What a verdict asks for. Ordered, so the decision over many verdicts is ``max()``."""

    PASS = 0
    FLAG = 1
    BLOCK = 2


@dataclass(frozen=True)
class Verdict:
    """One policy's finding.

    ``score`` is a risk in [0, 1]; ``redacted`` is the rewritten text when the policy rewrites
    (redaction, abstention) instead of blocking.
    """

    action: Action
    policy: str
    reason: str = ""
    score: float = 0.0
    redacted: str | None = None

    def __post_init__(self) -> None:
        # Coerce plain ints (Action is an IntEnum) so comparisons and to_dict stay uniform.
        object.__setattr__(self, "action", Action(self.action))
        if not self.policy:
            raise ValueError("a verdict names its policy: policy must be a non-empty string")
        if not (isinstance(self.score, numbers.Real) and math.isfinite(self.score)):
            raise ValueError(f"score must be a finite number in [0, 1], got {self.score!r}")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score is a risk in [0, 1], got {self.score}")
        # numpy scalars are Real too; store a plain float so verdicts serialise as JSON.
        object.__setattr__(self, "score", float(self.score))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used in ``guard.flags`` and the flag log (``redacted`` only when set)."""
        out: dict[str, Any] = {
            "policy": self.policy,
            "action": self.action.name.lower(),
            "reason": self.reason,
            "score": float(self.score),
        }
        if self.redacted is not None:
            out["redacted"] = self.redacted
        return out


@dataclass(frozen=True)
class Context:
    """What a policy sees.

    ``text`` is the last user message (``phase="prompt"``) or the answer (``phase="response"``).
    ``evidence`` is the proxy's ``guard`` object for calibrated tasks (``task``, ``answer``,
    ``probs``, ``raw_probs``, ``prior``, ``orders``, ``order_answers``, ``consistent``, ``key``);
    ``previous_prior`` is the calibration key's prior as last seen, for drift checks.
    """

    phase: Literal["prompt", "response"]
    text: str
    model: str = ""
    evidence: Mapping[str, Any] | None = None
    previous_prior: Sequence[float] | None = None

    def __post_init__(self) -> None:
        if self.phase not in ("prompt", "response"):
            raise ValueError(f"phase must be 'prompt' or 'response', got {self.phase!r}")


@runtime_checkable
class Policy(Protocol):
    """A check. ``name`` is what verdicts and the flag log call it."""

    name: str

    def check(self, ctx: Context) -> Verdict:
        """Look at ``ctx`` and return a verdict (``Action.PASS`` when nothing is wrong)."""
        ...


PolicyLike = Policy | Callable[[Context], Verdict]


def _check(policy: PolicyLike, ctx: Context) -> Verdict:
    if isinstance(policy, Policy):
        verdict = policy.check(ctx)
        label = policy.name
    else:
        verdict = policy(ctx)
        label = getattr(policy, "__name__", repr(policy))
    if not isinstance(verdict, Verdict):
        raise TypeError(f"policy {label!r} returned {type(verdict).__name__}, not a Verdict")
    return verdict


def run_policies(policies: Sequence[PolicyLike], ctx: Context) -> list[Verdict]:
    """Run every policy in order and return all their verdicts (none is skipped after a block,
    so the flag log sees every finding).

    Redactions chain: when a verdict carries ``redacted``, the next policy sees that text as
    ``ctx.text``, so the last redacted text has every earlier rewrite in it (see
    :func:`apply_redactions`). Exceptions raised by a policy propagate.
    """
    verdicts: list[Verdict] = []
    for policy in policies:
        verdict = _check(policy, ctx)
        verdicts.append(verdict)
        if verdict.redacted is not None:
            ctx = dataclasses.replace(ctx, text=verdict.redacted)
    return verdicts


def decide(verdicts: Sequence[Verdict]) -> Action:
    """The strongest action among ``verdicts``; ``Action.PASS`` when there are none."""
    return max((v.action for v in verdicts), default=Action.PASS)


def apply_redactions(text: str, verdicts: Sequence[Verdict]) -> str:
    """The text to send: the last redacted text (which includes the earlier ones, because
    :func:`run_policies` chains them), or ``text`` when no policy rewrote it."""
    for verdict in reversed(verdicts):
        if verdict.redacted is not None:
            return verdict.redacted
    return text
