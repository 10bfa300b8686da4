"""One request through calguard: parse, pick the task, pass through or calibrate, answer.

The proxy (``guard.app``) and the in-process wrapper (``guard.wrap``) both call
:meth:`Pipeline.chat`; the upstream behind it is whatever :class:`guard.upstream.Upstream` is
given (an OpenAI-compatible API, LiteLLM, or a wrapped function).
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from guard.asking import Ask
from guard.classify_flow import run_classify
from guard.config import RouteConfig, Settings
from guard.errors import InvalidRequestError, UpstreamError, UpstreamRejectedError
from guard.guarding import Checks, RoutePolicies, record, route_policies, violation
from guard.judge_flow import run_judge
from guard.mcq_flow import McqOutcome, run_mcq
from guard.mcq_text import find_options, last_user_text, locate_options
from guard.metrics import Metrics
from guard.protocol import GuardOptions, check_chat_body, split_guard
from guard.store import Store
from guard.upstream import RawResponse, Upstream
from policies import Context, Policy


@dataclass(frozen=True)
class Passthrough:
    """Send the upstream's answer back as it came (status, bytes, content type)."""

    raw: RawResponse


@dataclass(frozen=True)
class StreamThrough:
    """Stream the upstream's answer to this body back as its bytes arrive; with response
    policies, through the hold-back guard (:mod:`guard.stream_guard`)."""

    body: dict[str, Any]
    upstream: Upstream
    policies: Sequence[Policy] = ()
    checks: Checks | None = None
    log: Callable[..., Awaitable[int | None]] | None = None


@dataclass(frozen=True)
class Calibrated:
    """A calguard-built ChatCompletion (dict) with its ``guard`` evidence."""

    completion: dict[str, Any]


def new_request_id() -> str:
    return f"cg-{uuid.uuid4().hex[:16]}"


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        upstream: Upstream,
        store: Store,
        metrics: Metrics | None = None,
        policies: Mapping[str, RoutePolicies] | None = None,
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.store = store
        self.metrics = metrics or Metrics()
        self._litellm: Upstream | None = None
        if policies is None:
            policies = route_policies(settings)
        self.policies = dict(policies)
        self.default_policies = self.policies.pop("", RoutePolicies())
        self._last_prior: dict[str, list[float]] = {}  # per key, for prior_skew's drift check

    def upstream_for(self, route: RouteConfig) -> Upstream:
        """The route's upstream: the OpenAI-compatible client, or LiteLLM for other providers."""
        if route.provider == "litellm":
            if self._litellm is None:
                from guard.litellm_upstream import LiteLLMUpstream

                self._litellm = LiteLLMUpstream(
                    route.api_base, self.settings.upstream_key, self.settings.timeout_s
                )
            return self._litellm
        return self.upstream

    def _asker(self, upstream: Upstream) -> Ask:
        async def ask(body: dict[str, Any]) -> dict[str, Any]:
            return await self._ask(upstream, body)

        return ask

    async def _ask(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        self.metrics.inc("calguard_upstream_calls_total", help="upstream calls made")
        raw = await upstream.post("/chat/completions", body)
        if raw.status >= 400:
            raise _rejected(raw)
        try:
            return raw.json()
        except ValueError as exc:
            raise UpstreamError(f"upstream returned a body that is not JSON: {exc}") from exc

    async def chat(
        self, body: dict[str, Any], request_id: str
    ) -> Passthrough | StreamThrough | Calibrated:
        """A chat completion request, streaming or not (the caller renders the stream):
        prompt-side policies, then the task, then response-side policies and the flag log."""
        check_chat_body(body)
        rest, opts = split_guard(body)
        client_model = rest["model"]
        upstream_model, route = self.settings.route(client_model)
        rest["model"] = upstream_model
        pol = self.policies.get(client_model, self.default_policies)
        checks = Checks()
        log = functools.partial(
            record,
            self.store,
            checks,
            request_id=request_id,
            route=client_model,
            model=upstream_model,
            request=body,
        )
        found = last_user_text(rest["messages"])
        if pol.prompt and found is not None:
            ctx = Context("prompt", found[1], model=client_model)
            text, block = checks.run(pol.prompt, ctx)
            if block is not None:
                err = violation(block, "prompt", request_id)
                await log(key=None, response=err.to_body())
                raise err
            if text != found[1]:  # redacted before it reaches the upstream
                messages = list(rest["messages"])
                messages[found[0]] = {**messages[found[0]], "content": text}
                rest["messages"] = messages
        out = await self._dispatch(body, rest, opts, route, upstream_model, request_id)
        if isinstance(out, StreamThrough):
            if pol.response or checks.verdicts:
                return StreamThrough(out.body, out.upstream, pol.response, checks, log)
            return out
        if not (pol.response or checks.verdicts or _own_flags(out)):
            return out
        return await self._check_response(out, pol.response, checks, log, request_id)

    async def _check_response(
        self,
        out: Passthrough | Calibrated,
        response_policies: Sequence[Policy],
        checks: Checks,
        log: Callable[..., Awaitable[int | None]],
        request_id: str,
    ) -> Passthrough | Calibrated:
        if isinstance(out, Passthrough):
            if out.raw.status != 200:
                return out
            try:
                completion = out.raw.json()
            except ValueError:
                return out
        else:
            completion = out.completion
        evidence = completion.get("guard")
        key = evidence.get("key") if evidence else None
        if evidence:
            checks.extra_flags += list(evidence.get("flags") or [])
        choices = completion.get("choices") or [{}]
        message = choices[0].get("message") or {}
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        prior = evidence.get("prior") if evidence else None
        ctx = Context(
            "response",
            text,
            model=str(completion.get("model", "")),
            evidence=evidence,
            previous_prior=self._last_prior.get(key or ""),
        )
        if key and prior is not None:
            self._last_prior[key] = prior
        new_text, block = checks.run(response_policies, ctx)
        if block is not None:
            err = violation(block, "response", request_id)
            await log(key=key, response={**err.to_body(), "withheld": completion})
            raise err
        if new_text != text:
            choices[0]["message"] = {**message, "content": new_text}
        elif not checks.flags and isinstance(out, Passthrough):
            return out  # nothing found: the upstream's bytes go out untouched
        if checks.flags:
            guard = completion.setdefault("guard", {"request_id": request_id})
            guard["flags"] = checks.flags
            await log(key=key, response=completion)  # committed before the response is sent
        return Calibrated(completion)

    async def _dispatch(
        self,
        body: dict[str, Any],
        rest: dict[str, Any],
        opts: GuardOptions,
        route: RouteConfig,
        upstream_model: str,
        request_id: str,
    ) -> Passthrough | StreamThrough | Calibrated:
        upstream = self.upstream_for(route)
        ask = self._asker(upstream)
        task = opts.task
        found = last_user_text(rest["messages"])
        prompt = None
        if task in (None, "mcq") and found is not None:
            text = found[1]
            if opts.options is not None:
                try:
                    prompt = locate_options(text, opts.options)
                except ValueError as exc:
                    raise InvalidRequestError(str(exc), param="guard.options") from exc
            elif task == "mcq" or route.auto_detect:
                prompt = find_options(text)
        if task in ("classify", "judge"):
            if found is None:
                raise InvalidRequestError(
                    f"task {task!r} needs a last user message with text content", param="messages"
                )
            self.metrics.inc("calguard_requests_total", help="requests", task=task)
            idx, text, top = found[0], found[1], self.settings.top_logprobs
            if task == "classify":
                c = await run_classify(
                    ask=ask,
                    store=self.store,
                    body=rest,
                    msg_index=idx,
                    text=text,
                    opts=opts,
                    method=opts.calibration or route.classify,
                    upstream_model=upstream_model,
                    top_logprobs=top,
                )
                return Calibrated(
                    completion(
                        c.template,
                        body["model"],
                        request_id,
                        c.label,
                        c.usage,
                        {
                            "task": "classify",
                            "calibration": c.method,
                            "answer": c.label,
                            "index": c.index,
                            "probs": c.probs,
                            "raw_probs": c.raw_probs,
                            "prior": c.prior,
                            "upstream_calls": c.calls,
                            "flags": [],
                            "request_id": request_id,
                            "key": c.key,
                        },
                    )
                )
            j = await run_judge(
                ask=ask,
                body=rest,
                msg_index=idx,
                text=text,
                opts=opts,
                method=opts.calibration or route.judge,
                top_logprobs=top,
            )
            return Calibrated(
                completion(
                    j.template,
                    body["model"],
                    request_id,
                    j.answer,
                    j.usage,
                    {
                        "task": "judge",
                        "calibration": j.method,
                        "answer": j.answer,
                        "index": j.index,
                        "probs": j.probs,
                        "raw_probs": j.raw_probs,
                        "prior": None,
                        "upstream_calls": j.calls,
                        "flags": j.flags,
                        "request_id": request_id,
                        "consistent": j.consistent,
                        "order_winners": j.order_winners,
                        "first_position_rate": j.first_position_rate,
                    },
                )
            )
        if task == "mcq" and prompt is None:
            raise InvalidRequestError(
                "task is 'mcq' but no options were found in the last user message: write them "
                "one per line as 'A. text' / 'B) text' / '(C) text', or pass guard.options",
                param="guard.options",
            )
        if prompt is None or task == "none" or found is None:
            self.metrics.inc("calguard_requests_total", help="requests", task="none")
            if rest.get("stream"):
                return StreamThrough(rest, upstream)
            self.metrics.inc("calguard_upstream_calls_total", help="upstream calls made")
            return Passthrough(await upstream.post("/chat/completions", rest))
        self.metrics.inc("calguard_requests_total", help="requests", task="mcq")
        outcome = await run_mcq(
            ask=ask,
            store=self.store,
            body=rest,
            msg_index=found[0],
            prompt=prompt,
            route=route,
            opts=opts,
            upstream_model=upstream_model,
            top_logprobs=self.settings.top_logprobs,
        )
        return Calibrated(mcq_completion(outcome, body["model"], request_id))


def _own_flags(out: Passthrough | StreamThrough | Calibrated) -> bool:
    """A calibrated answer that flagged itself (a judge's order-inconsistent verdict)."""
    return isinstance(out, Calibrated) and bool((out.completion.get("guard") or {}).get("flags"))


def _rejected(raw: RawResponse) -> UpstreamRejectedError:
    try:
        parsed = json.loads(raw.body)
    except ValueError:
        parsed = None
    body = parsed if isinstance(parsed, dict) else None
    return UpstreamRejectedError(raw.status, body, f"upstream answered {raw.status}")


def _floats(x: Any) -> list[float] | None:
    return None if x is None else [round(float(v), 6) for v in x]


def completion(
    template: dict[str, Any],
    client_model: str,
    request_id: str,
    answer: str,
    usage: dict[str, int],
    evidence: dict[str, Any],
) -> dict[str, Any]:
    """A ChatCompletion whose message is the calibrated ``answer``, with the evidence attached."""
    return {
        "id": template.get("id") or f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": template.get("created") or int(time.time()),
        "model": template.get("model") or client_model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage or None,
        "guard": evidence,
    }


def mcq_completion(o: McqOutcome, client_model: str, request_id: str) -> dict[str, Any]:
    res = o.result
    answer = o.prompt.ids[res.index]
    return completion(
        o.template,
        client_model,
        request_id,
        answer,
        o.usage,
        {
            "task": "mcq",
            "calibration": o.method,
            "answer": answer,
            "index": res.index,
            "probs": _floats(res.probs),
            "raw_probs": _floats(res.raw_probs),
            "prior": _floats(res.prior),
            "upstream_calls": res.calls,
            "flags": [],
            "request_id": request_id,
            "key": o.key,
            "handling": res.handling,
            "role": res.role,
            "orders": [list(p) for p in res.orders],
            "order_answers": list(res.order_answers),
        },
    )
