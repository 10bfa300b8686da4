"""The ``openai`` upstream: any OpenAI-compatible HTTP API, over one shared connection pool (the
fast path; other providers go through :mod:`guard.upstreams.litellm`).

The fast path speaks to the upstream with the openai SDK's own HTTP transport (``httpx2``), but
not through the SDK's per-request machinery: profiled under load, building each request there
cost about as much as the HTTP exchange itself (``bench/proxy_overhead.py``). calguard already has
the JSON body; it posts those bytes.

Retries (tenacity) cover 429, 5xx, timeouts and dropped connections, honour ``Retry-After``, and
are bounded in attempts and in total time; then :class:`UpstreamError` (502) or
:class:`UpstreamTimeoutError` (504). A 4xx other than 429 is the client's problem: it is passed
back as the upstream said it (status and body), not retried.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from guard.errors import UpstreamError, UpstreamTimeoutError
from guard.upstreams.base import RawResponse

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class _RetryableStatus(Exception):
    """An upstream answer worth retrying (429, 5xx); carries it for Retry-After."""

    def __init__(self, response: httpx2.Response) -> None:
        super().__init__(f"upstream answered {response.status_code}")
        self.response = response


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, _RetryableStatus | httpx2.TransportError)


def _retry_after(exc: BaseException | None) -> float | None:
    if isinstance(exc, _RetryableStatus):
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
        self.base_url = base_url.rstrip("/")
        self.headers = {
            "Authorization": f"Bearer {api_key or 'not-needed'}",
            "Content-Type": "application/json",
        }
        self.http = httpx2.AsyncClient(
            limits=httpx2.Limits(max_connections=512, max_keepalive_connections=128),
            timeout=timeout_s,
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
        url = self.base_url + path
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        attempts = 0
        try:
            async for attempt in self._retrying():
                with attempt:
                    attempts += 1
                    resp = await self.http.request(
                        method, url, content=content, headers=self.headers
                    )
                    if resp.status_code in RETRY_STATUSES:
                        raise _RetryableStatus(resp)
                    return RawResponse(
                        resp.status_code, resp.content, resp.headers.get("content-type", "")
                    )
        except _RetryableStatus as exc:
            status = exc.response.status_code
            raise UpstreamError(
                f"upstream answered {status} after {attempts} attempt(s); "
                "check the upstream's health or raise max_attempts",
                upstream_status=status,
                attempts=attempts,
            ) from exc
        except httpx2.TimeoutException as exc:
            raise UpstreamTimeoutError(
                f"upstream did not answer within {self.timeout_s:g} s, {attempts} attempt(s); "
                "raise timeout_s or check the upstream",
                attempts=attempts,
                code="upstream_timeout",
            ) from exc
        except httpx2.TransportError as exc:
            raise UpstreamError(
                f"cannot reach the upstream at {self.base_url} after {attempts} "
                f"attempt(s): {exc!r}",
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
        url = self.base_url + path
        try:
            async with self.http.stream("POST", url, json=body, headers=self.headers) as resp:
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
        await self.http.aclose()
