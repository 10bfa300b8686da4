"""Built-in policies by name: the base class they share, the registry, and building from config.

A config entry is ``{"type": name, "params": {...}, "action": "flag" | "block" | "redact"}``.
``params`` are validated by the policy's pydantic model (``extra="forbid"``), so a typo names the
field; every mistake raises :class:`PolicyConfigError` with a message that lists what is valid.

To add a policy: subclass :class:`BuiltinPolicy` with a ``name`` and a ``params_model``, decorate
it with :func:`register`, and import its module from ``policies/__init__.py``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from policies.base import Action, Context, Policy, Verdict

Mode = Literal["flag", "block", "redact"]
_MODES: tuple[str, ...] = get_args(Mode)
_SPEC_KEYS = ("action", "params", "type")


def _closest(name: object, names: Sequence[str]) -> str:
    """' (did you mean X?)' for the closest of ``names``, or ''."""
    match = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


class PolicyConfigError(ValueError):
    """A policy config entry is wrong: unknown type, parameter or action, or a bad value.

    The message names the offending item and lists the valid ones.
    """


class PolicyParams(BaseModel):
    """Base of every policy's parameters: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=PolicyParams)


class BuiltinPolicy(Generic[P]):
    """A configured policy: ``params`` says what to look for, ``action`` what a hit becomes.

    A hit is ``Action.FLAG`` for ``"flag"`` and ``"redact"`` (the text goes out rewritten, and
    the verdict carries the rewrite in ``redacted``) and ``Action.BLOCK`` for ``"block"``. Only
    policies with ``redactable = True`` accept ``"redact"``. A policy with ``whole = True``
    judges only a whole answer (a part of a valid one may fail it): a stream's is read once,
    at its end.
    """

    name: str = ""
    params_model: ClassVar[type[PolicyParams]] = PolicyParams
    redactable: ClassVar[bool] = False
    whole: ClassVar[bool] = False

    def __init__(self, params: P | None = None, action: str = "flag") -> None:
        allowed = [m for m in _MODES if self.redactable or m != "redact"]
        if action == "redact" and not self.redactable:
            raise PolicyConfigError(
                f"policy {self.name!r} cannot redact: it does not rewrite spans of the text; "
                f"use action {' or '.join(map(repr, allowed))}"
            )
        if action not in allowed:
            raise PolicyConfigError(
                f"policy {self.name!r}: unknown action {action!r}; valid actions are "
                f"{', '.join(allowed)}"
            )
        if params is not None and not isinstance(params, self.params_model):
            raise TypeError(f"{type(self).__name__} takes {self.params_model.__name__}")
        self.action = cast(Mode, action)
        self.params: P = params if params is not None else cast(P, self.params_model())

    def check(self, ctx: Context) -> Verdict:
        """Return a verdict for ``ctx``; subclasses implement it."""
        raise NotImplementedError

    def hit(self, reason: str, score: float = 1.0, redacted: str | None = None) -> Verdict:
        """A finding, turned into the configured action."""
        action = Action.BLOCK if self.action == "block" else Action.FLAG
        return Verdict(action, self.name, reason, score, redacted)

    def passed(self, reason: str = "", score: float = 0.0) -> Verdict:
        """Nothing found."""
        return Verdict(Action.PASS, self.name, reason, score)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r}, action={self.action!r})"


_TYPES: dict[str, type[BuiltinPolicy[Any]]] = {}
POLICY_TYPES: Mapping[str, type[BuiltinPolicy[Any]]] = MappingProxyType(_TYPES)
"""Every registered policy class by its config name (read-only)."""

T = TypeVar("T", bound=type[BuiltinPolicy[Any]])


def register(cls: T) -> T:
    """Class decorator: make ``cls`` available to :func:`build_policy` as ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty name to be registered")
    if cls.name in _TYPES and _TYPES[cls.name] is not cls:
        raise ValueError(f"policy name {cls.name!r} is already taken by {_TYPES[cls.name]}")
    _TYPES[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget the policy registered as ``name`` (a plugin unloaded, a test cleaning up)."""
    _TYPES.pop(name, None)


def _describe(kind: str, cls: type[BuiltinPolicy[Any]], err: ValidationError) -> str:
    # Name fields as the config spells them (json_schema's `schema` is an alias).
    fields = cls.params_model.model_fields
    valid = ", ".join(sorted(f.alias or name for name, f in fields.items())) or "none"
    parts = []
    # A typo shows up as an unknown field plus a missing one; the unknown one is the news.
    for e in sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden"):
        where = ".".join(str(x) for x in e["loc"])
        if e["type"] == "extra_forbidden":
            hint = _closest(where, [f.alias or name for name, f in fields.items()])
            parts.append(f"unknown parameter {where!r}{hint} (valid parameters: {valid})")
        else:
            parts.append(f"parameter {where or 'params'!r}: {e['msg']}")
    return f"policy {kind!r}: " + "; ".join(parts)


def build_policy(spec: Mapping[str, Any]) -> Policy:
    """Build one policy from ``{"type", "params", "action"}`` (``params`` and ``action`` are
    optional; the action defaults to ``"flag"``). Raises :class:`PolicyConfigError`."""
    if not isinstance(spec, Mapping):
        raise PolicyConfigError(
            f"a policy spec is a mapping with keys {', '.join(_SPEC_KEYS)}, "
            f"got {type(spec).__name__}"
        )
    unknown = sorted(str(k) for k in spec if k not in _SPEC_KEYS)
    if unknown:
        raise PolicyConfigError(
            f"unknown key {unknown[0]!r} in policy spec{_closest(unknown[0], _SPEC_KEYS)}; "
            f"valid keys are {', '.join(_SPEC_KEYS)}"
        )
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        raise PolicyConfigError(
            f"unknown policy type {kind!r}{_closest(kind, sorted(_TYPES))}; "
            f"valid types are {', '.join(sorted(_TYPES))}"
        )
    cls = _TYPES[kind]
    raw = spec.get("params")
    raw = {} if raw is None else raw  # YAML `params:` with nothing under it is None
    if not isinstance(raw, Mapping):
        raise PolicyConfigError(
            f"policy {kind!r}: params must be a mapping, got {type(raw).__name__}"
        )
    try:
        params = cls.params_model.model_validate(dict(raw))
    except ValidationError as err:
        raise PolicyConfigError(_describe(kind, cls, err)) from None
    action = spec.get("action", "flag")
    if not isinstance(action, str):
        raise PolicyConfigError(
            f"policy {kind!r}: action must be a string such as 'flag' or 'block', got {action!r}"
        )
    return cls(params, action=action)


def build_policies(specs: Sequence[Mapping[str, Any]]) -> list[Policy]:
    """Build a list of policies; an error names the entry (``policies[2]: ...``)."""
    built: list[Policy] = []
    for i, spec in enumerate(specs):
        try:
            built.append(build_policy(spec))
        except PolicyConfigError as err:
            raise PolicyConfigError(f"policies[{i}]: {err}") from None
    return built
