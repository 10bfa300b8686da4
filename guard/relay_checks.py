"""Prompt-side policies on the relayed bodies that hold text a model reads
(:data:`guard.relayed_fields.READ`: a conversation's items, an Assistants thread's messages, a
run's instructions, an image prompt, the text of speech, ...).

Which policies: a body that names a ``model`` is checked by that model's route's prompt
policies, as the text endpoints choose a route (a model no route names: the default route's).
A body without one (a conversation, a thread, a message) can later be read by any model, so
it is checked by the prompt policies of every route, one route's after another's over the same
texts: any block refuses it, every redaction goes upstream, every flag is recorded.

What they do, as on the text endpoints: a block is the pipeline's 400 ``policy_violation``
(and a flag record), nothing goes upstream; a redaction sends the rewritten body (re-serialised
JSON, without the client's ``Content-Encoding``); a flag sends the body as it came. Any
verdict is recorded in the flag log before the body goes upstream (route ``*`` for every
route; the record's response names the relayed path). A body the policies cannot read where
they apply is refused, never relayed unread: one that is not a JSON object (a 400), one over
``max_body_bytes`` (a 413). Where no route has a prompt policy nothing is read: the relay is
as transparent as without this module.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from guard.checks import Checks, RoutePolicies, keys_given_twice, may_act, off_loop, record
from guard.config import Settings
from guard.endpoints import Endpoint
from guard.errors import InvalidRequestError, PolicyViolationError, RequestTooLargeError
from guard.folded import folded_copy
from guard.metrics import Metrics
from guard.relayed_fields import read_at
from guard.request import parse_json, refuse_duplicate_keys
from guard.request_body import decoded
from guard.scrub import Scrubber
from guard.store import Store
from policies import Policy

EVERY_ROUTE = "*"  # the flag record's route for a body checked by every route's policies
# The prompt policies that read one body (each set one route's), and its record's route and model
Chosen = tuple[list[tuple[Policy, ...]], str, str]


@dataclass(frozen=True)
class Checked:
    """What goes upstream after the checks: the body's bytes and whether they are still the
    client's (else its ``Content-Encoding`` no longer applies)."""

    content: bytes
    rewritten: bool


class RelayChecks:
    """The routes' prompt-side policies, on the relayed paths whose bodies a model reads."""

    def __init__(
        self,
        settings: Settings,
        policies: Mapping[str, RoutePolicies],
        store: Store,
        scrub: Scrubber,
        metrics: Metrics,
    ) -> None:
        self.limit = settings.max_body_bytes
        self.by_model = {name: p.prompt for name, p in policies.items() if name}
        self.default = policies.get("", RoutePolicies()).prompt
        self.every = _distinct(settings, policies)
        self.store, self.scrub, self.metrics = store, scrub, metrics

    async def check(
        self,
        method: str,
        path: str,
        content: bytes | AsyncIterator[bytes],
        headers: Mapping[str, str],
        request_id: str,
        out: dict[str, str],
    ) -> Checked | None:
        """Check one relayed request (``path`` under ``/v1``, without its leading ``/``); None:
        nothing to read here, it goes as it came. A block raises :class:`PolicyViolationError`
        (recorded first); ``out`` (the reply's headers) gets ``x-calguard-flags``."""
        endpoint = read_at(method, path) if self.every else None
        if endpoint is None:
            return None
        where = f"{method} /v1/{path}"
        raw = await self._whole(content, headers, where)
        coding = ",".join(_lines(headers, "content-encoding"))
        text = decoded(raw, coding, self.limit)
        if not text.strip():
            return Checked(raw, False)  # nothing to read (an empty thread); sent as it came
        try:  # a large body is parsed in a worker thread, as the policies read it
            body = await off_loop(len(text), lambda: _parsed(text))
        except InvalidRequestError as exc:
            if exc.param == "model" or _may_act(self.every):
                exc.message = f"{where}: prompt policies read this body, and {exc.message}"
                raise
            # flag-only everywhere: it goes as it came, flagged as not read (a flag changes
            # nothing), as on the text endpoints
            chosen = (self.every, EVERY_ROUTE, "")
            await self.read(endpoint, {}, chosen, where, request_id, out, unread="not JSON")
            return Checked(raw, False)
        chosen = self.chosen(body)
        if not chosen[0]:
            return Checked(raw, False)
        unread = await keys_given_twice(text, [p for s in chosen[0] for p in s])
        rewritten = await self.read(
            endpoint, body, chosen, where, request_id, out, len(text), unread=unread
        )
        if rewritten is not None:
            return Checked(json.dumps(rewritten, separators=(",", ":")).encode(), True)
        return Checked(raw, False)

    def chosen(self, body: Mapping[str, Any]) -> Chosen:
        """Which prompt policies read ``body`` (each set one route's, none empty), and the
        route and model its flag record names: a body naming a ``model`` is that model's
        route's, one without is every route's (any model may read it later)."""
        model = body.get("model")
        if isinstance(model, str):  # as the text endpoints choose a route
            sets, route, label = [self.by_model.get(model, self.default)], model, model
        else:
            sets, route, label = self.every, EVERY_ROUTE, ""
        return [s for s in sets if s], route, label

    async def read(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        chosen: Chosen,
        where: str,
        request_id: str,
        out: dict[str, str] | None = None,
        size: int = 0,
        *,
        unread: str | None = None,
    ) -> dict[str, Any] | None:
        """``body`` read by the ``chosen`` policies (:meth:`chosen`); the body to send when a
        redaction rewrote it (a copy; the client's keys), else None: it goes as it came. A
        block raises :class:`PolicyViolationError`, recorded first; any other verdict is
        recorded before this returns. ``out`` (the reply's headers) gets ``x-calguard-flags``;
        ``size`` (the body's bytes) decides whether the policies read it off the event loop;
        ``unread``: what flag-only policies could not read for sure, flagged so."""
        sets, route, label = chosen
        checks = Checks(request_id)
        if unread is not None:
            checks.not_read([p for s in sets for p in s], unread)

        def run() -> None:
            nonlocal body
            body = folded_copy(body)  # read as a case-folding parser reads it
            for policies in sets:
                checks.prompt(policies, body, endpoint, label)

        try:
            await off_loop(size, run)
        except PolicyViolationError as err:
            await self._log(checks, route, label, body, err.to_body())
            checks.tally(self.metrics)
            raise
        if checks.flags:  # committed before the body goes upstream
            await self._log(checks, route, label, body, {"relayed": where})
            checks.tally(self.metrics, out)
        return body if any(v.redacted is not None for v in checks.prompt_verdicts) else None

    async def _whole(
        self, content: bytes | AsyncIterator[bytes], headers: Mapping[str, str], where: str
    ) -> bytes:
        """The body whole (one over :data:`guard.request_body.RETRIED_BYTES` came as it comes),
        up to ``max_body_bytes``: the policies read it all or it does not go."""
        if isinstance(content, bytes):
            return content
        said = headers.get("content-length", "")
        parts: list[bytes] = []
        size = int(said) if said.isdigit() else 0
        if size <= self.limit:
            size = 0
            async for chunk in content:
                parts.append(chunk)
                size += len(chunk)
                if size > self.limit:
                    break
        if size > self.limit:
            raise RequestTooLargeError(
                f"{where}: prompt policies read this body, and it is over the limit of "
                f"{self.limit} bytes (max_body_bytes)"
            )
        return b"".join(parts)

    async def _log(
        self, checks: Checks, route: str, model: str, body: dict[str, Any], response: Any
    ) -> None:
        await record(
            self.store, checks, route=route, model=model, key=None, request=body,
            response=response, scrub=self.scrub,
        )  # fmt: skip


def _may_act(sets: Sequence[Sequence[Policy]]) -> bool:
    return any(may_act(p) for s in sets for p in s)


def _parsed(text: bytes) -> dict[str, Any]:
    body = parse_json(text)
    refuse_duplicate_keys(text, prompts_checked=False)  # it says which route's policies
    return body


def _lines(headers: Mapping[str, str], name: str) -> list[str]:
    """Every line of a header (Starlette's headers keep each; a plain mapping has one)."""
    getlist = getattr(headers, "getlist", None)
    if getlist is not None:
        return list(getlist(name))
    value = headers.get(name)
    return [] if value is None else [value]


def _distinct(
    settings: Settings, policies: Mapping[str, RoutePolicies]
) -> list[tuple[Policy, ...]]:
    """Every route's prompt policies, those of routes configured alike once (a flag is then
    recorded once, not once a route)."""
    seen: dict[str, tuple[Policy, ...]] = {}
    for name, found in policies.items():
        if not found.prompt:
            continue
        route = settings.default_route if name == "" else settings.routes.get(name)
        specs = [s for s in route.policies if s.get("on", "both") != "response"] if route else []
        key = json.dumps(specs, sort_keys=True, default=repr) if route else f"#{name}"
        seen.setdefault(key, found.prompt)
    return list(seen.values())
