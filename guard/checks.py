"""Policies in the request path: which run where, what their verdicts do, and the flag record.

A route's ``policies`` are ``[{type, params, action, on}]``; ``on`` is ``prompt``, ``response`` or
``both`` (default). Prompt-side policies see every text of the request (every message, every text
part, a completion's prompt); response-side ones every choice of the answer. On each side: BLOCK
stops the request with a ``policy_violation`` error, a redacting verdict rewrites the text, FLAG
lets it through with the verdicts attached. Every request with a non-PASS verdict gets one flag
record, committed before the response is sent. Streams: :mod:`guard.stream_checks`. Text beside
an answer (reasoning, decoded tool-call arguments: :class:`guard.endpoint_fields.Aside`) is read
by span policies only: the others judge the answer itself.

Custom policies: a :class:`policies.registry.BuiltinPolicy` subclass registered with
``policies.registry.register``, or named in the ``calguard.policies`` entry point group.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, TypeVar

from guard.config import RouteConfig, Settings
from guard.endpoint_fields import Aside, put_all
from guard.endpoints import Endpoint
from guard.errors import (
    ConfigError,
    InvalidRequestError,
    PolicyViolationError,
    StoreUnavailableError,
)
from guard.folded import reading
from guard.metrics import Metrics
from guard.request import refuse_duplicate_keys
from guard.store import Store
from guard.store.spool import Spool
from guard.store.threads import in_store_thread
from policies import (
    Action,
    Context,
    Policy,
    PolicyConfigError,
    Verdict,
    apply_redactions,
    build_policy,
    decide,
    run_policies,
)
from policies.registry import POLICY_TYPES, register
from policies.spans import SpanPolicy

PHASES = ("prompt", "response", "both")


@dataclass(frozen=True)
class RoutePolicies:
    prompt: tuple[Policy, ...] = ()
    response: tuple[Policy, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.prompt or self.response)

    @property
    def hide_answers(self) -> bool:
        """Whether a response-side policy may rewrite or stop an answer (all but a built-in
        set to flag): then the upstream's stored copy of one holds what the client was not
        given."""
        return any(getattr(p, "action", None) != "flag" for p in self.response)


def load_policy_plugins() -> None:
    """Register the policies named in the ``calguard.policies`` entry point group."""
    for ep in entry_points(group="calguard.policies"):
        cls = ep.load()
        if POLICY_TYPES.get(getattr(cls, "name", "")) is not cls:
            register(cls)


def build_route_policies(where: str, route: RouteConfig) -> RoutePolicies:
    """The route's policies, built once at start-up; a bad spec stops start-up, named."""
    prompt: list[Policy] = []
    response: list[Policy] = []
    for i, spec in enumerate(route.policies):
        at = f"{where}.policies[{i}]"
        on = spec.get("on", "both")
        if on not in PHASES:
            raise ConfigError(f"{at}.on: {on!r} is not one of {', '.join(PHASES)}")
        try:
            policy = build_policy({k: v for k, v in spec.items() if k != "on"})
        except PolicyConfigError as exc:
            raise ConfigError(f"{at}: {exc}") from exc
        if on in ("prompt", "both"):
            prompt.append(policy)
        if on in ("response", "both"):
            response.append(policy)
    return RoutePolicies(tuple(prompt), tuple(response))


def route_policies(settings: Settings) -> dict[str, RoutePolicies]:
    """Every route's policies by client-facing model name; the default route's under ""."""
    load_policy_plugins()
    out = {
        name: build_route_policies(f"routes.{name}", route)
        for name, route in settings.routes.items()
    }
    out[""] = build_route_policies("default_route", settings.default_route)
    return out


_REDACTORS: list[Policy] = []


def redact_secrets(value: Any) -> Any:
    """``value`` with every string run through the ``secrets`` and ``pii`` redactions: the flag
    log never holds a secret or raw PII, whatever the route's policies were set to do."""
    if not _REDACTORS:
        _REDACTORS.extend(
            build_policy({"type": kind, "action": "redact"}) for kind in ("secrets", "pii")
        )
    if isinstance(value, str):
        for policy in _REDACTORS:
            v = policy.check(Context("response", value))
            value = v.redacted if v.redacted is not None else value
        return value
    if isinstance(value, Mapping):
        return {k: redact_secrets(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_secrets(v) for v in value]
    return value


def chained(verdicts: list[Verdict]) -> list[Verdict]:
    """``verdicts`` with each redacting one carrying the text after every redaction of the run:
    :func:`policies.run_policies` chains rewrites, so an earlier verdict's text still holds what a
    later policy took out, and verdicts go to the client (``guard.flags``) and the flag log."""
    final = apply_redactions("", verdicts)
    return [
        dataclasses.replace(v, redacted=final) if v.redacted is not None else v for v in verdicts
    ]


def may_act(policy: Policy) -> bool:
    """Whether ``policy``'s verdict could change what goes through (block, redact, end a
    stream): all but a built-in set to flag. Only such a policy fails closed on what it cannot
    read; a flag-only one lets it through, flagged."""
    return getattr(policy, "action", None) != "flag"


async def keys_given_twice(raw: bytes, policies: Sequence[Policy]) -> str | None:
    """:func:`guard.request.refuse_duplicate_keys` for a body ``policies`` read (a large one
    in a worker thread): a key given twice is a 400 where one of them may act on what it reads
    (the upstream may read the other value), and so is ``model`` twice wherever; for
    flag-only ones, None or why they did not read it for sure (a flag changes nothing: the
    body goes as it came, flagged as not read)."""
    try:
        await off_loop(len(raw), lambda: refuse_duplicate_keys(raw, prompts_checked=bool(policies)))
    except InvalidRequestError as exc:
        if exc.param == "model" or any(map(may_act, policies)):
            raise
        return f"the key {exc.param!r} is given twice in one object"
    return None


def _shape(unread: str, endpoint: Endpoint) -> str:
    """Why the field ``unread`` cannot be read, as a sentence's end."""
    if unread == "extra_body":
        return "is merged into the request after the checks (by the SDK or LiteLLM)"
    if unread in endpoint.embeds_fields:
        return "carries the prompt as embeddings"
    return "was sent as token IDs or in another shape than a string or a list of strings"


def _unread(body: dict[str, Any], endpoint: Endpoint) -> str | None:
    """The field of ``body`` holding text the prompt policies would not read: the endpoint's
    own (:meth:`Endpoint.unread_prompt`), or an ``extra_body`` left in the body, which the
    OpenAI SDK (the wrapper) and LiteLLM (a LiteLLM route) merge over the checked fields."""
    return "extra_body" if body.get("extra_body") is not None else endpoint.unread_prompt(body)


T = TypeVar("T")
# A body or answer larger than this is checked in a worker thread: the policies read it in
# time linear in its size (about 0.3 s a MB for pii), and on the event loop every other
# request would wait that long. (Python switches threads every few milliseconds: the loop
# goes on serving in between.)
OFF_LOOP_BYTES = 1_000_000


async def off_loop(size: int, check: Callable[[], T]) -> T:
    """``check()``, in a worker thread where what it reads is over :data:`OFF_LOOP_BYTES`."""
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(check)
    return check()


def violation(verdict: Verdict, phase: str, request_id: str) -> PolicyViolationError:
    return PolicyViolationError(
        verdict.policy, verdict.reason or "policy hit", phase=phase, request_id=request_id
    )


@dataclass
class Checks:
    """The verdicts of one request so far, by side, and what they did."""

    request_id: str
    prompt_verdicts: list[Verdict] = field(default_factory=list)
    response_verdicts: list[Verdict] = field(default_factory=list)
    extra_flags: list[dict[str, Any]] = field(default_factory=list)  # e.g. a judge's own flag

    def run(self, policies: Sequence[Policy], ctx: Context) -> tuple[str, Verdict | None]:
        """(the text after redactions, the blocking verdict if any)."""
        if ctx.phase == "response" and isinstance(ctx.text, Aside):
            policies = [p for p in policies if isinstance(p, SpanPolicy)]
        if not policies:
            return ctx.text, None
        verdicts = [v for v in chained(run_policies(policies, ctx)) if v.action != Action.PASS]
        (self.prompt_verdicts if ctx.phase == "prompt" else self.response_verdicts).extend(verdicts)
        blocking = next((v for v in verdicts if v.action == Action.BLOCK), None)
        redacted = [v.redacted for v in verdicts if v.redacted is not None]
        return (redacted[-1] if redacted else ctx.text), blocking

    def prompt(
        self, policies: Sequence[Policy], body: dict[str, Any], endpoint: Endpoint, model: str
    ) -> None:
        """Check every text of the request; redactions rewrite ``body`` in place; a block
        raises :class:`PolicyViolationError`."""
        try:
            with reading():  # a field looked up where two keys fold alike to it: a 400
                unread = _unread(body, endpoint) if policies else None
                slots = list(endpoint.prompt_slots(body))
        except InvalidRequestError as exc:
            if exc.code != "duplicate_key" or any(map(may_act, policies)):
                raise
            # flag-only: read as written (each key as it is spelled), flagged as not read
            self.not_read(policies, f"keys that differ only in case ({exc.param!r})")
            unread = _unread(body, endpoint)
            slots = list(endpoint.prompt_slots(body))
        if unread is not None:
            names = sorted({str(getattr(p, "name", p)) for p in policies})
            shape = _shape(unread, endpoint)
            if any(map(may_act, policies)):
                # A prompt the policies cannot read would walk around them: refuse it, saying
                # why.
                raise InvalidRequestError(
                    f"this route checks prompts ({', '.join(names)}) and '{unread}' {shape}, so "
                    "calguard cannot read it: send the text itself, at the top level of the "
                    "request, or use a route without prompt-side policies",
                    param=unread,
                    code="unreadable_prompt",
                    request_id=self.request_id,
                )
            # Flag-only: it goes as it came (a flag changes nothing), flagged as not read.
            self.not_read(policies, f"'{unread}' {shape}")
        # Every text is checked and redacted before a block is raised: the record keeps the
        # request as it would have gone, never a redacting policy's match.
        first: Verdict | None = None
        rewrites: list[tuple[Callable[[str], None], str]] = []
        for text, put in slots:
            new, block = self.run(policies, Context("prompt", text, model=model))
            first = first or block
            if new != text:
                rewrites.append((put, new))
        put_all(rewrites)
        if first is not None:
            raise violation(first, "prompt", self.request_id)

    def answer(
        self,
        policies: Sequence[Policy],
        completion: dict[str, Any],
        endpoint: Endpoint,
        *,
        evidence: Mapping[str, Any] | None = None,
        previous_prior: Sequence[float] | None = None,
    ) -> bool:
        """Check every choice of an answer; redactions rewrite ``completion`` in place (True
        when one did); a block raises :class:`PolicyViolationError`."""
        first: Verdict | None = None  # raised once every text is redacted (as for prompts)
        rewrites: list[tuple[Callable[[str], None], str]] = []
        for text, put in list(endpoint.answers(completion)):
            ctx = Context(
                "response",
                text,
                model=str(completion.get("model", "")),
                evidence=evidence,
                previous_prior=previous_prior,
            )
            new, block = self.run(policies, ctx)
            first = first or block
            if new != text:
                rewrites.append((put, new))
        put_all(rewrites)
        if first is not None:
            raise violation(first, "response", self.request_id)
        return bool(rewrites)

    def not_read(self, policies: Sequence[Policy], why: str) -> None:
        """A flag from each of ``policies`` (flag-only ones) for a text they could not read,
        which went on as it came: the client and the flag log still know."""
        names = sorted({str(getattr(p, "name", p)) for p in policies})
        reason = f"not read: {why}"
        self.extra_flags += [
            {"policy": name, "action": "flag", "reason": reason, "score": 1.0} for name in names
        ]

    def tally(self, metrics: Metrics, headers: dict[str, str] | None = None) -> None:
        """Count the verdicts; with ``headers``, name their policies in ``x-calguard-flags``."""
        flags = self.flags
        if headers is not None:
            self.name(headers)
        for f in flags:
            metrics.flags.labels(f["policy"], f.get("action", "flag")).inc()

    def name(self, headers: dict[str, str]) -> None:
        """Name the policies of the verdicts so far in ``headers`` (``x-calguard-flags``)."""
        headers["x-calguard-flags"] = ",".join(sorted({f["policy"] for f in self.flags}))

    @property
    def verdicts(self) -> list[Verdict]:
        return self.prompt_verdicts + self.response_verdicts

    @property
    def flags(self) -> list[dict[str, Any]]:
        return [v.to_dict() for v in self.verdicts] + self.extra_flags

    @property
    def action(self) -> str:
        if self.extra_flags and not self.verdicts:
            return "flag"
        return decide(self.verdicts).name.lower()


async def record(
    store: Store,
    checks: Checks,
    *,
    route: str,
    model: str,
    key: str | None,
    request: Mapping[str, Any],
    response: Any,
    scrub: Any = None,
    spool: Spool | None = None,
) -> int | None:
    """Commit the flag record of this request (if anything was flagged) before it is answered.
    ``request`` is the body as it went upstream (after prompt-side redaction). ``spool``: where
    the record goes if the store is down (its answer has gone out); else the store's error."""
    if not checks.flags:
        return None

    def clean(value: Any) -> Any:  # no key of calguard's, no secret, no raw PII
        return redact_secrets(scrub.value(value) if scrub else value)

    def add() -> int | None:  # in a worker thread: redacting a large body takes its time
        flag = {
            "time": when,
            "request_id": checks.request_id,
            "route": route,
            "model": model,
            "key": key,
            "action": checks.action,
            "policies": sorted({f["policy"] for f in checks.flags}),
            "verdicts": clean(checks.flags),  # a redacting verdict's text: as it went on
            "request": clean(request),
            "response": clean(response),
        }
        kept = _text_only(flag)
        try:
            return store.add_flag(kept)
        except StoreUnavailableError as exc:
            if spool is None:
                raise
            try:
                spool.put(kept)
            except OSError as why:  # not kept anywhere: the store's error, as without a spool
                raise exc from why
            return None

    when = time.time()
    return await in_store_thread(add)


def _text_only(value: Any) -> Any:
    """``value`` with every lone surrogate (an upstream can send ``\\ud800`` in its JSON) made
    U+FFFD: a record must be storable and readable back as UTF-8 text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, Mapping):
        return {_text_only(k): _text_only(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_text_only(v) for v in value]
    return value
