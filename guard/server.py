"""The OpenAI-compatible proxy (FastAPI). Routes read the request, hand it to the pipeline
(:mod:`guard.pipeline`) and render its reply; nothing else happens here.

    POST /v1/chat/completions   through the pipeline (stream and non-stream)
    POST /v1/completions        through the pipeline (stream and non-stream)
    POST /v1/responses          through the pipeline (stream and non-stream)
    POST /v1/embeddings         through the pipeline (policies on the input)
    *    /v1/...                any other path: relayed untouched (guard.relay); the bodies a
                                model reads (threads, conversations, ...) through the prompt
                                policies first (guard.relay_checks)
    GET  /v1/models             the upstream's models plus the configured routes
    GET  /v1/guard/flags        the flag log (admin key)
    GET  /healthz               liveness (the process answers)
    GET  /readyz                readiness: the store and the upstream answer (else 503)
    GET  /metrics               Prometheus text

Every error is an OpenAI error body with the right status, and carries ``x-request-id``.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard import flag_log, readiness
from guard.checks import off_loop, route_policies
from guard.config import Settings, load_settings
from guard.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES, Endpoint
from guard.errors import (
    AuthenticationError,
    CalguardError,
    ClientGoneError,
    InvalidRequestError,
    NotFoundError,
)
from guard.metrics import CONTENT_TYPE, Metrics
from guard.pipeline import Pipeline
from guard.relay import Relay
from guard.relay_checks import RelayChecks
from guard.reply import AnswerCutError, Reply, new_request_id
from guard.request import parse_json
from guard.request_body import RETRIED_BYTES, decoded, read_body, relayed_body
from guard.store import Store, open_store
from guard.upstreams import Upstream, check_provider
from guard.upstreams.headers import header_lines

R = TypeVar("R", bound=Response)


def _with_lines(response: R, headers: Mapping[str, str]) -> R:
    """``response`` with ``headers`` added, a field that came on several lines as those lines
    (two ``Set-Cookie`` stay two). A ``content-length`` among them (a HEAD's: the length of
    what a GET would get) replaces the one of the empty body."""
    for name, value in header_lines(headers):
        if name == "content-length":
            response.headers[name] = _latin1(value)
        else:
            response.headers.append(name, _latin1(value))
    return response


def _latin1(value: str) -> str:
    """``value`` as Starlette writes header values (one byte per character): an upstream's
    comes so already; any other text goes as its UTF-8 bytes, never a crash."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("latin-1")
    return value


def _error(exc: CalguardError, request_id: str) -> JSONResponse:
    headers = {**getattr(exc, "headers", {}), "x-request-id": request_id}
    return _with_lines(JSONResponse(exc.to_body(), status_code=exc.status), headers)


def render(reply: Reply) -> Response:
    """The pipeline's reply as an HTTP response, as it is: its content type as the upstream
    said it (given as a media type, Starlette would add a charset to a ``text/*`` one), none
    where it said none (a 204, a 304)."""
    response: Response
    if reply.stream is not None:
        response = StreamingResponse(reply.stream, reply.status)
    else:
        response = Response(reply.body, reply.status)
    if reply.media_type:
        response.headers["content-type"] = _latin1(reply.media_type)
    return _with_lines(response, reply.headers)


def _written(request: Request) -> str | None:
    """The path after ``/v1`` as the client wrote it (its escapes kept), if it wrote ``/v1``."""
    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes) or not raw.startswith(b"/v1/"):
        return None
    return raw[3:].decode("latin-1")


async def _read_json(request: Request, limit: int) -> dict[str, Any]:
    return parse_json(await read_body(request, limit))


class RequestIdMiddleware:
    """Gives every request an id (``x-request-id``, the client's if it sent one), puts it on
    the response, and times the request by route template. Plain ASGI: no extra task."""

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
        except AnswerCutError:
            pass  # logged where it broke; the answer ends unfinished, the connection closes
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "other"
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


def _authorize(request: Request, keys: Sequence[str]) -> str | None:
    """The proxy key the request carries (None when the proxy has none); else a 401."""
    if not keys:
        return None
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    token_b = token.encode("utf-8", "surrogateescape")
    match = next((k for k in keys if hmac.compare_digest(token_b, k.encode())), None)
    if match is None:
        raise AuthenticationError(
            "missing or invalid API key: send 'Authorization: Bearer <key>' with one of "
            "the proxy's keys"
            if token == ""
            else "invalid API key"
        )
    return match


def _preflight(request: Request) -> bool:
    """A browser's CORS preflight: an OPTIONS naming the method it asks about, and saying it
    has no body (one that says it has one needs a key before calguard reads it)."""
    h = request.headers
    return (
        request.method == "OPTIONS"
        and "origin" in h
        and "access-control-request-method" in h
        and "transfer-encoding" not in h
        and h.get("content-length", "0").strip() == "0"
    )


async def until_disconnect(request: Request, work: Awaitable[Reply]) -> Reply:
    """``work``, cancelled (its upstream calls with it) if the client goes away first."""
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watch = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not task.done():
        task.cancel()
        raise ClientGoneError("the client disconnected before the reply was ready")
    return task.result()


def create_app(
    settings: Settings, upstream: Upstream | None = None, store: Store | None = None
) -> FastAPI:
    """The proxy app. ``upstream`` / ``store`` default to the settings' (built at start-up)."""
    metrics = Metrics()
    holder: dict[str, Pipeline] = {}
    relay: dict[str, Relay] = {}
    policies = route_policies(settings)  # a bad policy spec stops start-up here, named
    for name, route in settings.named_routes().items():  # and so does an unknown provider
        check_provider(route.provider, name if name == "default_route" else f"routes.{name}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        st = store or open_store(settings.store)
        pipeline = Pipeline(settings, st, upstream=upstream, metrics=metrics, policies=policies)
        if settings.needs_upstream():
            pipeline.default_upstream  # noqa: B018  # a missing upstream stops start-up, named
        holder["p"] = pipeline
        # Relays go to the default upstream wherever there is one: also beside routes that all
        # have their own provider, when `upstream` is set (the default route's, as on chat)
        has_default = not settings.default_route.own_provider and (
            bool(settings.upstream) or upstream is not None
        )
        up = pipeline.default_upstream if settings.needs_upstream() or has_default else None
        hide = any(p.hide_answers for p in policies.values())
        checks = RelayChecks(settings, policies, st, pipeline.scrub, metrics)
        relay["r"] = Relay(settings, up, metrics, pipeline.scrub, hide_answers=hide, checks=checks)
        try:
            yield
        finally:
            await pipeline.aclose()
            if store is None:
                st.close()

    # No redirect from /v1 to /v1/ or /healthz/ to /healthz: an empty 307 is neither the
    # upstream's answer nor an OpenAI error (those paths are 404s)
    app = FastAPI(title="calguard", lifespan=lifespan, redirect_slashes=False)

    def rid_of(request: Request) -> str:
        return getattr(request.state, "request_id", None) or new_request_id()

    @app.exception_handler(CalguardError)
    async def on_calguard_error(request: Request, exc: CalguardError) -> JSONResponse:
        metrics.errors.labels(exc.type).inc()
        return _error(exc, rid_of(request))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        body = {
            "error": {
                "message": f"{request.method} {request.url.path}: {exc.detail}",
                "type": kind,
                "param": None,
                "code": None,
            }
        }
        headers = {**(exc.headers or {}), "x-request-id": rid_of(request)}
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in err.get("loc", ())[1:]) or None
        msg = f"{where}: {err.get('msg', 'invalid value')}" if where else "invalid request"
        return _error(InvalidRequestError(msg, param=where), rid_of(request))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = rid_of(request)
        err = CalguardError(f"internal error ({type(exc).__name__}); request id {rid}")
        return _error(err, rid)

    app.add_middleware(RequestIdMiddleware, metrics=metrics)

    async def through(endpoint: Endpoint, request: Request) -> Response:
        caller = _authorize(request, settings.api_keys)
        limit = settings.max_body_bytes
        said = ",".join(request.headers.getlist("content-encoding"))  # every line of it
        raw = decoded(await read_body(request, limit), said, limit)
        body = await off_loop(len(raw), lambda: parse_json(raw))  # a large one off the loop
        handling = holder["p"].handle(
            endpoint,
            body,
            request.state.request_id,
            headers=request.headers,
            query=request.url.query,
            caller=caller,
            raw=raw,
        )
        return render(await until_disconnect(request, handling))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await through(CHAT, request)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await through(COMPLETIONS, request)

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        return await through(RESPONSES, request)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        return await through(EMBEDDINGS, request)

    @app.api_route("/v1/guard/flags", methods=["GET", "HEAD"])  # calguard's, never relayed
    async def list_flags(
        request: Request,
        since: float | None = None,
        policy: str | None = None,
        limit: int = 100,
        after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,  # a store's integer
    ) -> Response:
        """Oldest first; ``after``: only ids above it (the last id read: the next page)."""
        if not settings.admin_key:
            raise NotFoundError("the flag log endpoint is off: set admin_key to enable it")
        _authorize(request, [settings.admin_key])
        return await flag_log.page(
            holder["p"].store, since=since, policy=policy, limit=max(1, min(limit, 10_000)),
            after=after,
        )  # fmt: skip

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        _authorize(request, settings.api_keys)
        return render(await relay["r"].models(request.headers, request.url.query))

    @app.get("/v1/models/{model:path}")
    async def model(request: Request, model: str) -> Response:
        _authorize(request, settings.api_keys)
        found = await relay["r"].model(model, request.headers, request.url.query, _written(request))
        return render(found)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        found = await readiness.check(holder["p"], settings.ready_timeout_s)
        return JSONResponse(found.body(), status_code=200 if found.ready else 503)

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        if not settings.metrics_public:  # the admin key, else a proxy key, where there are any
            _authorize(request, [settings.admin_key] if settings.admin_key else settings.api_keys)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.api_route(
        "/v1/{path:path}", methods=["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
    )
    async def other(request: Request, path: str) -> Response:
        """Every other path under /v1 (stored completions, files, batches, ...), untouched;
        also a HEAD or an OPTIONS (a browser's CORS preflight) to any path under /v1. A
        preflight carries no key (browsers send none): it is relayed without one, and without
        calguard's upstream key. The flag log's path is calguard's: another method is a 405."""
        if path == "guard/flags":
            raise StarletteHTTPException(405, "Method Not Allowed", {"allow": "GET, HEAD"})
        preflight = _preflight(request)
        if not preflight:
            _authorize(request, settings.api_keys)
        content = await relayed_body(request, min(settings.max_body_bytes, RETRIED_BYTES))
        if preflight and content:  # a preflight has no body: this is something else
            _authorize(request, settings.api_keys)
        reply = await relay["r"].forward(
            request.method, f"/{path}", content, request.headers, request.url.query,
            request.state.request_id, _written(request),
        )  # fmt: skip
        return render(reply)

    return app


def app_from_env() -> FastAPI:
    """The proxy built from the environment: ``CALGUARD_CONFIG`` (a YAML file) and the
    ``CALGUARD_*`` settings. An app factory for uvicorn's import string, which several worker
    processes need: ``uvicorn --factory guard.server:app_from_env`` (``calguard serve
    --workers N`` passes its flags this way)."""
    return create_app(load_settings(os.environ.get("CALGUARD_CONFIG") or None))
