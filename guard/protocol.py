"""The request side of the contract: the optional ``guard`` object and basic body checks.

Everything else in an OpenAI body passes through to the upstream untouched.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guard.errors import InvalidRequestError

Task = Literal["mcq", "classify", "judge", "none"]
Calibration = Literal[
    "pride",
    "adaptive",
    "cyclic",
    "full",
    "batch",
    "prior-match",
    "contextual",
    "domain",
    "swap",
    "none",
]
MCQ_CALIBRATIONS = ("pride", "adaptive", "cyclic", "full", "none")


class GuardOptions(BaseModel):
    """The ``guard`` object of a request (``extra_body={"guard": {...}}`` in the OpenAI SDK)."""

    model_config = ConfigDict(extra="forbid")

    task: Task | None = None
    calibration: Calibration | None = None
    options: list[str] | None = Field(None, min_length=2, max_length=10)
    labels: list[str] | None = Field(None, min_length=2)
    input: str | None = None
    candidates: list[str] | None = Field(None, min_length=2, max_length=10)
    key: str | None = None
    budget: float | None = Field(None, ge=1.0)


def split_guard(body: dict[str, Any]) -> tuple[dict[str, Any], GuardOptions]:
    """The body without ``guard``, and the parsed ``guard`` object (defaults when absent)."""
    raw = body.get("guard")
    rest = {k: v for k, v in body.items() if k != "guard"}
    if raw is None:
        return rest, GuardOptions()
    if not isinstance(raw, dict):
        raise InvalidRequestError("guard must be an object", param="guard")
    try:
        return rest, GuardOptions.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequestError(
            f"guard.{where}: {err['msg']}", param=f"guard.{where}", code="invalid_guard"
        ) from exc


def check_chat_body(body: dict[str, Any]) -> None:
    """The minimum a chat completion body needs; the upstream checks the rest."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequestError("'model' is required and must be a string", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError(
            "'messages' is required and must be a non-empty array", param="messages"
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise InvalidRequestError(
                f"messages[{i}] must be an object with a 'role'", param=f"messages[{i}]"
            )
