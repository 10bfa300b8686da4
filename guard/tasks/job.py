"""What a task is given, and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from guard.config import RouteConfig
from guard.request import GuardOptions
from guard.store import Store
from guard.tasks.distribution import Ask


@dataclass
class Job:
    """One calibrated request: ``body`` is what goes upstream (no ``guard``, the upstream
    model's name), ``text`` the last user message at ``msg_index``."""

    ask: Ask
    store: Store
    body: dict[str, Any]
    msg_index: int
    text: str
    opts: GuardOptions
    route: RouteConfig
    upstream_model: str
    top_logprobs: int
    cache: dict[Any, Any] = field(default_factory=dict)  # per-process state by key (the task's)
    detected: Any = None  # what the auto-detection found (an McqPrompt)


@dataclass(frozen=True)
class Outcome:
    """A task's answer: the text the reply carries, its ``guard`` evidence, the first upstream
    response (for id / model / created / system_fingerprint) and the usage of every call."""

    answer: str
    evidence: dict[str, Any]
    template: dict[str, Any]
    usage: dict[str, int]
