"""The OpenAI-compatible proxy (FastAPI): endpoints, errors, streaming.

    POST /v1/chat/completions   pass-through or calibrated (stream and non-stream)
    POST /v1/completions        pass-through (stream and non-stream)
    GET  /v1/models             the upstream's models plus the configured routes
    GET  /healthz               liveness
    GET  /metrics               Prometheus text

Every error is an OpenAI error body with the right status, and carries ``x-request-id``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard.config import Settings
from guard.errors import (
    AuthenticationError,
    CalguardError,
    InvalidRequestError,
    NotFoundError,
    RequestTooLargeError,
)
from guard.guarding import route_policies
from guard.metrics import Metrics
from guard.pipeline import Calibrated, Passthrough, Pipeline, StreamThrough, new_request_id
from guard.store import Store
from guard.stream_guard import guarded_stream
from guard.upstream import OpenAIUpstream, Upstream


def _error(exc: CalguardError, request_id: str) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.status, headers={"x-request-id": request_id})


async def _read_json(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"request body is over the limit of {limit} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise RequestTooLargeError(f"request body is over the limit of {limit} bytes")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequestError(
            f"could not parse the request body as JSON: {exc}", code="invalid_json"
        ) from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    return body


def _sse(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n".encode()


async def _calibrated_stream(completion: dict[str, Any]) -> AsyncIterator[bytes]:
    base = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion["model"],
    }
    content = completion["choices"][0]["message"]["content"]
    yield _sse(
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
    )
    yield _sse(
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
            "guard": completion["guard"],
        }
    )
    yield b"data: [DONE]\n\n"


async def _stream_through(
    upstream: Upstream,
    path: str,
    body: dict[str, Any],
    request_id: str,
    guard: StreamThrough | None = None,
    holdback: int | None = None,
) -> Response:
    gen = upstream.stream(path, body)
    if guard is not None and guard.policies and guard.checks is not None and guard.log:
        gen = guarded_stream(gen, guard.policies, guard.checks, guard.log, holdback, request_id)
    try:  # the first chunk decides the status: an upstream failure is still a proper error
        first = await gen.__anext__()
    except StopAsyncIteration:
        first = b""
    except CalguardError as exc:
        return _error(exc, request_id)

    async def relay() -> AsyncIterator[bytes]:
        yield first
        try:
            async for chunk in gen:
                yield chunk
        except CalguardError as exc:  # mid-stream: the status is sent, so say it in-band
            yield _sse(exc.to_body())

    return StreamingResponse(
        relay(), media_type="text/event-stream", headers={"x-request-id": request_id}
    )


class RequestIdMiddleware:
    """Gives every request an id (``x-request-id``, the client's if it sent one), puts it on
    the response, and times the request. Plain ASGI: no extra task per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = Headers(scope=scope).get("x-request-id") or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "x-request-id" not in headers:
                    headers.append("x-request-id", rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.observe_latency(scope["path"], time.perf_counter() - start)


def create_app(
    settings: Settings, upstream: Upstream | None = None, store: Store | None = None
) -> FastAPI:
    """The proxy app. ``upstream`` / ``store`` default to the settings' (built at start-up)."""
    metrics = Metrics()
    holder: dict[str, Pipeline] = {}
    policies = route_policies(settings)  # a bad policy spec stops start-up here, named

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        up = upstream
        if up is None:
            if not settings.upstream:
                raise CalguardError(
                    "no upstream configured: pass --upstream URL or set CALGUARD_UPSTREAM"
                )
            up = OpenAIUpstream(
                settings.upstream,
                settings.upstream_key,
                timeout_s=settings.timeout_s,
                max_attempts=settings.max_attempts,
                max_wait_s=settings.retry_max_wait_s,
            )
        st = store or Store(settings.sqlite_path)
        holder["p"] = Pipeline(settings, up, st, metrics, policies)
        try:
            yield
        finally:
            if upstream is None:
                await up.aclose()
            if store is None:
                st.close()

    app = FastAPI(title="calguard", lifespan=lifespan)

    @app.exception_handler(CalguardError)
    async def on_calguard_error(request: Request, exc: CalguardError) -> JSONResponse:
        rid = getattr(request.state, "request_id", None) or new_request_id()
        metrics.inc("calguard_errors_total", help="error responses", type=exc.type)
        return _error(exc, rid)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        rid = getattr(request.state, "request_id", None) or new_request_id()
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        body = {
            "error": {
                "message": f"{request.method} {request.url.path}: {exc.detail}",
                "type": kind,
                "param": None,
                "code": None,
            }
        }
        return JSONResponse(body, status_code=exc.status_code, headers={"x-request-id": rid})

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(InvalidRequestError(str(exc)), new_request_id())

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = getattr(request.state, "request_id", None) or new_request_id()
        err = CalguardError(f"internal error ({type(exc).__name__}); request id {rid}")
        return _error(err, rid)

    app.add_middleware(RequestIdMiddleware, metrics=metrics)

    def authorize(request: Request, keys: Sequence[str]) -> None:
        if not keys:
            return
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not any(hmac.compare_digest(token, k) for k in keys):
            raise AuthenticationError(
                "missing or invalid API key: send 'Authorization: Bearer <key>' with one of "
                "the proxy's keys"
                if token == ""
                else "invalid API key"
            )

    @app.get("/v1/guard/flags")
    async def list_flags(
        request: Request, since: float | None = None, policy: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        if not settings.admin_key:
            raise NotFoundError("the flag log endpoint is off: set admin_key to enable it")
        authorize(request, [settings.admin_key])
        store_ = holder["p"].store
        rows = await asyncio.to_thread(
            store_.flags, since=since, policy=policy, limit=max(1, min(limit, 10_000))
        )
        return {"object": "list", "data": rows}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        authorize(request, settings.api_keys)
        rid = request.state.request_id
        body = await _read_json(request, settings.max_body_bytes)
        out = await holder["p"].chat(body, rid)
        if isinstance(out, StreamThrough):
            holdback = None if settings.stream_holdback == "full" else settings.stream_holdback
            return await _stream_through(
                out.upstream, "/chat/completions", out.body, rid, out, holdback
            )
        if isinstance(out, Passthrough):
            return Response(
                out.raw.body,
                status_code=out.raw.status,
                media_type=out.raw.content_type or "application/json",
                headers={"x-request-id": rid},
            )
        assert isinstance(out, Calibrated)
        headers = {"x-request-id": rid}
        flags = (out.completion.get("guard") or {}).get("flags") or []
        if flags:
            headers["x-calguard-flags"] = ",".join(sorted({f["policy"] for f in flags}))
            for f in flags:
                metrics.inc(
                    "calguard_flags_total",
                    help="verdicts by policy",
                    policy=f["policy"],
                    action=f.get("action", "flag"),
                )
        if body.get("stream"):
            return StreamingResponse(
                _calibrated_stream(out.completion), media_type="text/event-stream", headers=headers
            )
        return JSONResponse(out.completion, headers=headers)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        authorize(request, settings.api_keys)
        rid = request.state.request_id
        body = await _read_json(request, settings.max_body_bytes)
        if not isinstance(body.get("model"), str):
            raise InvalidRequestError("'model' is required and must be a string", param="model")
        rest = {k: v for k, v in body.items() if k != "guard"}
        rest["model"] = settings.route(rest["model"])[0]
        up = holder["p"].upstream
        if rest.get("stream"):
            return await _stream_through(up, "/completions", rest, rid)
        raw = await up.post("/completions", rest)
        return Response(
            raw.body,
            status_code=raw.status,
            media_type=raw.content_type or "application/json",
            headers={"x-request-id": rid},
        )

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        authorize(request, settings.api_keys)
        data: list[dict[str, Any]] = []
        try:
            raw = await holder["p"].upstream.get("/models")
            if raw.status == 200:
                data = list(raw.json().get("data", []))
        except (CalguardError, ValueError):
            data = []  # the routes below are still served
        known = {m.get("id") for m in data}
        data += [
            {"id": name, "object": "model", "created": 0, "owned_by": "calguard"}
            for name in settings.routes
            if name not in known
        ]
        return {"object": "list", "data": data}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return app
