"""Upstream clients: OpenAI-compatible endpoints through ``openai.AsyncOpenAI`` (the fast path,
one shared connection pool), anything else through ``litellm``.

Retries (tenacity) cover 429, 5xx, timeouts and dropped connections, honour ``Retry-After``, and
are bounded in attempts and in total time; then :class:`UpstreamError` (502) or
:class:`UpstreamTimeoutError` (504). A 4xx other than 429 is the client's problem: it is passed
back as the upstream said it (status and body), not retried.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from guard.errors import UpstreamError, UpstreamTimeoutError

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RawResponse:
    status: int
    body: bytes
    content_type: str

    def json(self) -> dict[str, Any]:
        data = json.loads(self.body)
        if not isinstance(data, dict):
            raise ValueError("upstream returned JSON that is not an object")
        return data


class Upstream(Protocol):
    async def post(self, path: str, body: dict[str, Any]) -> RawResponse: ...

    def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[bytes]: ...

    async def get(self, path: str) -> RawResponse: ...

    async def aclose(self) -> None: ...


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRY_STATUSES
    return isinstance(exc, openai.APIConnectionError)


def _retry_after(exc: BaseException | None) -> float | None:
    if isinstance(exc, openai.APIStatusError):
        value = exc.response.headers.get("retry-after")
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


class _Wait:
    """Retry-After when the upstream names it (capped), else exponential backoff with jitter."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait
        self.backoff = wait_exponential_jitter(multiplier=0.1, max=max_wait)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = _retry_after(exc)
        return min(after, self.max_wait) if after is not None else self.backoff(state)


class OpenAIUpstream:
    """An OpenAI-compatible API at ``base_url`` (e.g. ``http://host:8000/v1``)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 60.0,
        max_attempts: int = 3,
        max_wait_s: float = 20.0,
    ) -> None:
        # One connection pool for the openai client and for raw streaming pass-through.
        self.http = httpx2.AsyncClient(
            limits=httpx2.Limits(max_connections=512, max_keepalive_connections=128),
            timeout=timeout_s,
        )
        self.client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=0,  # tenacity owns retries, so they are bounded in one place
            http_client=self.http,
        )
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self._wait = _Wait(max_wait_s)

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts)
            | stop_after_delay(self.timeout_s + self.max_wait_s * self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> RawResponse:
        attempts = 0
        try:
            async for attempt in self._retrying():
                with attempt:
                    attempts += 1
                    if method == "GET":
                        resp = await self.client.get(path, cast_to=httpx2.Response)
                    else:
                        resp = await self.client.post(path, body=body, cast_to=httpx2.Response)
                    return RawResponse(
                        resp.status_code, resp.content, resp.headers.get("content-type", "")
                    )
        except openai.APIStatusError as exc:
            if exc.status_code in RETRY_STATUSES:
                raise UpstreamError(
                    f"upstream answered {exc.status_code} after {attempts} attempt(s); "
                    "check the upstream's health or raise max_attempts",
                    upstream_status=exc.status_code,
                    attempts=attempts,
                ) from exc
            r = exc.response
            return RawResponse(r.status_code, r.content, r.headers.get("content-type", ""))
        except openai.APITimeoutError as exc:
            raise UpstreamTimeoutError(
                f"upstream did not answer within {self.timeout_s:g} s, {attempts} attempt(s); "
                "raise timeout_s or check the upstream",
                attempts=attempts,
                code="upstream_timeout",
            ) from exc
        except openai.APIConnectionError as exc:
            raise UpstreamError(
                f"cannot reach the upstream at {self.client.base_url} after {attempts} "
                f"attempt(s): {exc}",
                attempts=attempts,
                code="upstream_unreachable",
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def post(self, path: str, body: dict[str, Any]) -> RawResponse:
        return await self._call("POST", path, body)

    async def get(self, path: str) -> RawResponse:
        return await self._call("GET", path, None)

    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[bytes]:
        """The upstream's response bytes as they arrive (no retry once bytes have flowed)."""
        url = str(self.client.base_url).rstrip("/") + path
        headers = {"Authorization": f"Bearer {self.client.api_key}"}
        try:
            async with self.http.stream("POST", url, json=body, headers=headers) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise UpstreamError(
                        f"upstream answered {resp.status_code} to a streaming request: "
                        f"{resp.text[:500]}",
                        upstream_status=resp.status_code,
                    )
                async for chunk in resp.aiter_raw():
                    yield chunk
        except httpx2.TimeoutException as exc:
            raise UpstreamTimeoutError(
                f"upstream stream timed out after {self.timeout_s:g} s", code="upstream_timeout"
            ) from exc
        except httpx2.TransportError as exc:
            raise UpstreamError(f"upstream stream failed: {exc}") from exc

    async def aclose(self) -> None:
        await self.client.close()
