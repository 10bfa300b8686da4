"""What a task is given, and what it gives back."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from guard.config import RouteConfig
from guard.errors import UpstreamError
from guard.request import GuardOptions
from guard.store import Store
from guard.tasks.distribution import Ask, add_usage, ask_distribution
from guard.upstreams.base import Upstream
from guard.upstreams.headers import account_headers


class Recent(OrderedDict[Any, Any]):
    """A dict that keeps its ``limit`` most recently used entries (the per-process snapshots of
    calibration state: one per key, and clients can choose keys)."""

    def __init__(self, limit: int = 10_000) -> None:
        super().__init__()
        self.limit = limit

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


def namespace(caller: str | None) -> str:
    """A caller's namespace: a digest of its proxy key (never the key itself), or "public"."""
    if caller is None:
        return "public"
    return hashlib.sha256(caller.encode("utf-8", "surrogateescape")).hexdigest()[:16]


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
    route_name: str = ""  # the model the client named (its route, or the default route)
    cache: dict[Any, Any] = field(default_factory=dict)  # per-process state by key (the task's)
    detected: Any = None  # what the auto-detection found (an McqPrompt)
    namespace: str = "public"  # where client-chosen keys (guard.key) live: one per proxy key
    patience: float | None = None  # seconds a question waits for its key's warm-up (mcq)
    calls: int = 0  # every call asked upstream for this request (its retries: once)
    usage: dict[str, Any] = field(default_factory=dict)  # their usage, details too, added up
    account: dict[str, str] = field(default_factory=dict)  # the latest's rate-limit headers
    sampled: bool = False  # a distribution came from sampled answers (no logprobs)

    def asker(
        self, upstream: Upstream, headers: Mapping[str, str], query: str, count: Callable[[], Any]
    ) -> Ask:
        """Ask ``upstream`` (chat completions) for this job: every call counted (once, however
        often the upstream client retried it), its usage added up, an error answer raised as
        the upstream's own."""

        async def ask(body: dict[str, Any]) -> dict[str, Any]:
            count()
            self.calls += 1
            raw = await upstream.post("/chat/completions", body, headers=headers, query=query)
            if raw.status >= 400:
                raise raw.rejected()
            try:
                resp = raw.json()
            except ValueError as exc:
                raise UpstreamError(f"upstream returned a body that is not JSON: {exc}") from exc
            add_usage(self.usage, resp)
            self.account = account_headers(raw.headers)
            return resp

        return ask

    def client_key(self, key: str | None) -> str | None:
        """``guard.key`` in the caller's own namespace: no client can write another's state."""
        return None if key is None else f"client/{self.namespace}/{key}"

    async def distribution(
        self, content: str, forms: Mapping[str, Sequence[str]]
    ) -> tuple[npt.NDArray[np.float64], dict[str, Any]]:
        """The upstream's distribution over ``forms`` with ``content`` as the last user message;
        an upstream model that refused logprobs once is sampled from then on."""
        refused = ("refuses-logprobs", self.upstream_model)
        return await ask_distribution(
            self.ask,
            self.body,
            self.msg_index,
            content,
            forms,
            self.top_logprobs,
            logprobs=not self.cache.get(refused),
            on_refusal=lambda: self.cache.__setitem__(refused, True),
            on_sampled=lambda: setattr(self, "sampled", True),
        )


@dataclass(frozen=True)
class Outcome:
    """A task's answer: the text the reply carries, its ``guard`` evidence, the first upstream
    response (for id / model / created / system_fingerprint) and the usage of every call."""

    answer: str
    evidence: dict[str, Any]
    template: dict[str, Any]
    usage: dict[str, Any]


async def unset_ask(body: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError("a job's asker is set right after the job is made")
