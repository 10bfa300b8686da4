"""One request through calguard, top to bottom, into a finished :class:`~guard.reply.Reply`:

    parse      the body and its ``guard`` object; the route, its upstream and its policies
    prompt     prompt-side policies on every text of the request (block / redact / flag)
    task       a calibrated task (mcq, classify, judge) or a pass-through to the upstream
    response   response-side policies on every choice (whole, or on the stream as it flows)
    log        one flag record for anything flagged, committed before the reply goes out
    reply      the body or stream to send, or an OpenAI-style error

Every text endpoint goes through :meth:`Pipeline.handle` and both faces (the server,
:mod:`guard.server`, and the in-process client, :mod:`guard.client`) only render its reply, so
no policy can be skipped by choosing another endpoint or another face.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from guard import sse
from guard.checks import Checks, RoutePolicies, keys_given_twice, may_act, off_loop, route_policies
from guard.config import RouteConfig, Settings
from guard.endpoints import Endpoint
from guard.errors import (
    CalguardError,
    InvalidRequestError,
    NotFoundError,
    PolicyViolationError,
    UpstreamError,
    UpstreamTimeoutError,
)
from guard.folded import folded_copy
from guard.metrics import Metrics
from guard.pipeline_request import PipelineRequest, said
from guard.reply import Evidence, Reply, chunks, completion, primed, scrubbed, started
from guard.request import AutoOptions, check_endpoint_body, split_guard
from guard.scrub import Scrubber, url_passwords
from guard.store import Store
from guard.store.spool import Spool, spool_dir
from guard.stream_checks import checked_stream
from guard.tasks import TASKS, Job
from guard.tasks.detection import MCQ_FIELDS, detect_mcq, wants_more_than_an_id
from guard.tasks.job import Recent, namespace, unset_ask
from guard.tasks.prompt_text import find_options, last_user_text
from guard.upstreams import RawResponse, Upstream
from guard.upstreams.headers import forward_headers, passed_headers
from guard.upstreams.retries import NO_MORE
from guard.upstreams.routes import RouteUpstreams

log = logging.getLogger("calguard")


class Pipeline:
    """The request path. ``upstream`` replaces the settings' upstream (tests, the wrapper)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        upstream: Upstream | None = None,
        metrics: Metrics | None = None,
        policies: dict[str, RoutePolicies] | None = None,
        cache: Recent | None = None,
        spool: Spool | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics or Metrics()
        policies = dict(route_policies(settings) if policies is None else policies)
        self.default_policies = policies.pop("", RoutePolicies())
        self.policies = policies
        self._given = upstream
        self.upstreams = RouteUpstreams(settings, upstream)
        # the tasks' per-key state snapshots, bounded; shared by a wrapped client's copies
        self.cache = Recent() if cache is None else cache
        self._last_prior = Recent(self.cache.limit)  # per key, prior_skew's drift check; bounded
        self.holdback = None if settings.stream_holdback == "full" else settings.stream_holdback
        routes = list(settings.named_routes().values())
        secrets: list[str | None] = [settings.upstream_key, settings.admin_key, *settings.api_keys]
        secrets += [r.api_key for r in routes]
        secrets += url_passwords([settings.upstream, *(r.api_base for r in routes)])
        self.scrub = Scrubber(secrets)
        where = spool_dir(store, settings.spool_dir)
        self.spool = spool or Spool(where, store, max_bytes=settings.spool_max_bytes)

    def upstream_for(self, route: RouteConfig) -> Upstream:
        return self.upstreams.for_route(route)

    @property
    def default_upstream(self) -> Upstream:
        return self.upstreams.for_route(self.settings.default_route)

    async def aclose(self) -> None:
        self.spool.close()
        await self.upstreams.aclose()

    # -- the request path ----------------------------------------------------------------------

    async def handle(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        request_id: str,
        *,
        headers: Mapping[str, str] | None = None,
        query: str = "",
        caller: str | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        """One request on ``endpoint``, finished: checked, logged, ready to render.
        ``headers`` are the client's headers to pass on, ``query`` its query string, ``raw``
        the body's bytes (sent on as they are when calguard changes nothing in it)."""
        out = {"x-calguard-request-id": request_id}
        try:
            async with asyncio.timeout(self.settings.deadline):
                reply = await self._handle(
                    endpoint, body, request_id, out, headers, query, caller, raw
                )
        except TimeoutError:
            exc = UpstreamTimeoutError(
                f"no reply within the request deadline of {self.settings.deadline:g} s "
                "(deadline_s, or timeout_s x max_attempts)",
                code="deadline_exceeded",
                request_id=request_id,
            )
            # The time of every attempt is spent: a client that asked again would have
            # calguard's attempts made again, for the same wait (its SDK retries a 504).
            exc.headers = dict(NO_MORE)
            reply = Reply.of_error(exc, out)
        reply = scrubbed(await primed(reply), self.scrub)
        if reply.status >= 500 and reply.stream is None:  # one line per upstream failure
            said = reply.body[:300].decode("utf-8", "replace")
            log.warning("request %s: answered %d: %s", request_id, reply.status, said)
        return reply

    async def _handle(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        request_id: str,
        out: dict[str, str],
        headers: Mapping[str, str] | None,
        query: str,
        caller: str | None,
        raw: bytes | None,
    ) -> Reply:
        req: PipelineRequest | None = None
        try:
            req = self._parse(endpoint, body, request_id, out)
            # read whole: a key given twice (flag-only policies let it through, flagged)
            if raw is not None and (why := await keys_given_twice(raw, req.policies.prompt)):
                req.checks.not_read(req.policies.prompt, why)
            req.forward = forward_headers(headers or {}, self.settings, self.scrub.keys)
            req.query = query
            req.scrub, req.caller = self.scrub, caller
            req.raw = raw if req.exact else None
            req.size = len(raw or b"")
            await self._prompt_checks(req)
            if (job := self._task(req)) is not None:
                reply = await self._calibrated(req, job)
            else:
                reply = await self._passthrough(req)
        except CalguardError as exc:
            exc.request_id = exc.request_id or request_id
            self.metrics.errors.labels(exc.type).inc()
            reply = Reply.of_error(exc, out)
        if req is not None and req.checks.flags and not req.logged and reply.stream is None:
            # Prompt-side verdicts (a redaction went upstream) of a request that then failed
            # or was refused upstream: recorded with what came back.
            try:
                await req.log(self.store, None, {"status": reply.status, "body": said(reply)})
            except CalguardError as exc:
                reply = Reply.of_error(exc, out)
            req.checks.tally(self.metrics)
        return reply

    def _parse(
        self, endpoint: Endpoint, body: dict[str, Any], request_id: str, headers: dict[str, str]
    ) -> PipelineRequest:
        stored = check_endpoint_body(endpoint, body)
        rest, opts = split_guard(body)
        client_model = "" if stored else rest["model"]
        if self._given is None and not self.settings.serves(client_model):
            served = ", ".join(sorted(self.settings.routes)) or "none"
            raise NotFoundError(
                f"model {client_model!r} is not served here; the models are: {served}",
                param="model",
                code="model_not_found",
            )
        upstream_model, route = self.settings.route(client_model)
        if upstream_model or not stored:  # a route's own upstream model still applies
            rest["model"] = upstream_model
        return PipelineRequest(
            endpoint,
            request_id,
            rest,
            opts,
            client_model,
            upstream_model,
            route,
            self.policies.get(client_model, self.default_policies),
            Checks(request_id),
            headers,
            exact="guard" not in body and upstream_model == client_model,
        )

    async def _prompt_checks(self, req: PipelineRequest) -> None:
        if not req.policies.prompt:
            return

        def check() -> None:
            # a copy (redactions rewrite nested texts), read as a case-folding parser reads it
            req.body = folded_copy(req.body)
            req.checks.prompt(req.policies.prompt, req.body, req.endpoint, req.client_model)

        try:
            await off_loop(req.size, check)
        except PolicyViolationError as err:
            await req.log(self.store, None, err.to_body())
            req.checks.tally(self.metrics)
            raise
        if any(v.redacted is not None for v in req.checks.prompt_verdicts):
            req.raw = None  # rewritten: no longer the client's bytes

    def _task(self, req: PipelineRequest) -> Job | None:
        """The calibrated task this request asks for (or the route detects), or None.

        ``guard.task`` is an order. Without it, a ``guard`` object that sets ``calibration``,
        ``options``, ``budget`` or ``key`` asks to calibrate an MCQ (options parsed from the
        prompt when not given; none found: pass-through); no such object, only a route with
        ``auto_detect`` looks, with the precise detector. Neither calibrates a request that
        wants more than an option ID (:func:`wants_more_than_an_id`)."""
        opts, body = req.opts, req.body
        task = opts.task
        if task == "none":
            return None
        if not req.endpoint.tasks:
            if task is not None:
                raise InvalidRequestError(
                    f"task {task!r} is served on /v1/chat/completions only", param="guard.task"
                )
            return None
        found = last_user_text(body["messages"])
        detected = None
        if task is None:
            assert isinstance(opts, AutoOptions)
            asked = any(getattr(opts, f) is not None for f in MCQ_FIELDS)
            if wants_more_than_an_id(body) or not (asked or req.route.auto_detect):
                return None
            if opts.options is None:
                if found is not None:
                    detected = (find_options if asked else detect_mcq)(found[1])
                if detected is None:
                    return None
            task = "mcq"
        if found is None:
            raise InvalidRequestError(
                f"task {task!r} needs a last user message with text content", param="messages"
            )
        job = Job(
            ask=unset_ask,
            store=self.store,
            body=body,
            msg_index=found[0],
            text=found[1],
            opts=opts,
            route=req.route,
            route_name=req.client_model,
            upstream_model=req.upstream_model,
            top_logprobs=self.settings.top_logprobs,
            cache=self.cache,
            detected=detected,
            namespace=namespace(req.caller),
            patience=self.settings.deadline / 4,
        )
        job.ask = job.asker(
            self.upstream_for(req.route), req.forward, req.query, self.metrics.upstream_calls.inc
        )
        return job

    async def _calibrated(self, req: PipelineRequest, job: Job) -> Reply:
        task = "mcq" if isinstance(job.opts, AutoOptions) else str(job.opts.task)
        self.metrics.requests.labels(task).inc()
        out = await TASKS[task](job)
        evidence: Evidence = {**out.evidence, "request_id": req.request_id}  # type: ignore[typeddict-item]
        done = completion(
            out.template, req.client_model, req.request_id, out.answer, out.usage, evidence
        )
        req.checks.extra_flags += list(evidence.get("flags") or [])
        await self._answer_checks(req, done, evidence)
        headers = {**job.account, **req.headers}  # the account's rate limits, as they stand
        if req.body.get("stream"):
            usage = bool((req.body.get("stream_options") or {}).get("include_usage"))
            return Reply.of_stream(chunks(done, usage), headers)
        return Reply.of_json(done, headers)

    async def _passthrough(self, req: PipelineRequest) -> Reply:
        self.metrics.requests.labels("none").inc()
        upstream = self.upstream_for(req.route)
        path = req.endpoint.path
        if req.body.get("stream"):
            self.metrics.upstream_calls.inc()
            opened = await upstream.stream(
                path, req.body, headers=req.forward, query=req.query, content=req.raw
            )
            req.headers.update(passed_headers(opened.headers))
            if opened.status >= 400:  # the upstream's own error, as it said it
                body = await opened.read()
                return Reply(opened.status, req.headers, body, media_type=opened.content_type)
            if not sse.is_stream(opened.content_type):
                # An upstream that answered a stream with one body: read it whole, within the
                # request's deadline, and check it as one.
                raw = RawResponse(opened.status, await opened.read(), opened.content_type)
                return await self._whole(req, raw)
            stream = sse.whole_events(opened.chunks, opened.limit)
            if req.policies.response:
                if req.checks.flags:  # the prompt's, known before the stream starts
                    req.checks.name(req.headers)

                async def log(response: Any) -> None:
                    await req.log(self.store, None, response, self.spool)
                    req.checks.tally(self.metrics)

                stream = checked_stream(
                    stream, req.policies.response, req.checks, req.endpoint, log, self.holdback
                )
            elif req.checks.flags:  # prompt-side verdicts only: recorded before the stream
                await req.log(self.store, None, {"stream": True})
                req.checks.tally(self.metrics, req.headers)
            return started(stream, req.headers, opened.content_type)
        self.metrics.upstream_calls.inc()
        raw = await upstream.post(
            path, req.body, headers=req.forward, query=req.query, content=req.raw
        )
        req.headers.update(passed_headers(raw.headers))
        return await self._whole(req, raw)

    async def _whole(self, req: PipelineRequest, raw: RawResponse) -> Reply:
        """A whole (non-stream) answer: as it came, unless a policy acts on it."""
        if raw.status != 200 or not (req.policies.response or req.checks.flags):
            return Reply.of_raw(raw, req.headers)
        try:
            done = raw.json()
        except ValueError as exc:
            if any(map(may_act, req.policies.response)):  # fail closed: what cannot be read
                raise UpstreamError(  # cannot be checked
                    f"the upstream's answer is not a JSON object ({exc}); the policies cannot "
                    "check it",
                    code="upstream_unreadable",
                ) from exc
            req.checks.not_read(req.policies.response, "the answer is not a JSON object")
            return Reply.of_raw(raw, req.headers)
        changed = await self._answer_checks(req, done, None, len(raw.body))
        if not changed and not req.checks.flags:
            return Reply.of_raw(raw, req.headers)  # nothing found: the upstream's bytes go out
        return Reply.of_json(done, req.headers)

    async def _answer_checks(
        self, req: PipelineRequest, done: dict[str, Any], evidence: Evidence | None, size: int = 0
    ) -> bool:
        """Response-side policies on a whole answer, then the flag record; True if it changed."""
        key = evidence.get("key") if evidence else None
        prior = evidence.get("prior") if evidence else None
        changed = False
        if req.policies.response:
            try:
                changed = await off_loop(
                    size,
                    lambda: req.checks.answer(
                        req.policies.response,
                        done,
                        req.endpoint,
                        evidence=evidence,
                        previous_prior=self._last_prior.get(key or ""),
                    ),
                )
            except PolicyViolationError as err:
                await req.log(self.store, key, {**err.to_body(), "withheld": done})
                req.checks.tally(self.metrics)
                raise
            finally:
                if key and prior is not None:
                    self._last_prior[key] = prior
        if req.checks.flags:
            guard = done.setdefault("guard", {"request_id": req.request_id})
            guard["flags"] = req.checks.flags
            await req.log(self.store, key, done)  # committed before the reply goes out
            req.checks.tally(self.metrics, req.headers)
        return changed
