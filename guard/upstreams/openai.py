"""The ``openai`` upstream: any OpenAI-compatible HTTP API, over one shared connection pool (the
fast path; other providers go through :mod:`guard.upstreams.litellm`).

It speaks HTTP with aiohttp, not through the SDK's per-request machinery: calguard already has
the JSON body and posts those bytes. Profiled under load (``bench/proxy_overhead.py``), building
each request in the SDK cost about as much as the HTTP exchange, and httpx's connection pool
scans every pooled connection on every request (a cost that grows with concurrency).

Retries (tenacity) cover 429, 5xx, timeouts and dropped connections, honour ``Retry-After``, and
are bounded in attempts and in total time; then :class:`UpstreamError` (502) or
:class:`UpstreamTimeoutError` (504). A 4xx other than 429 is the client's problem: it is passed
back as the upstream said it (status and body), not retried. Compressed bodies are decompressed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
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

    def __init__(self, response: RawResponse) -> None:
        super().__init__(f"upstream answered {response.status}")
        self.response = response


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, _RetryableStatus | aiohttp.ClientError | asyncio.TimeoutError)


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
        self._session: aiohttp.ClientSession | None = None
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

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use, inside the event loop that serves requests.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=512, ttl_dns_cache=300),
                headers=self.headers,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    @property
    def closed(self) -> bool:
        return self._session is None or self._session.closed

    async def _once(self, method: str, url: str, content: bytes | None) -> RawResponse:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with self._http().request(method, url, data=content, timeout=timeout) as resp:
            raw = RawResponse(
                resp.status,
                await resp.read(),
                resp.headers.get("content-type", ""),
                {k.lower(): v for k, v in resp.headers.items()},
            )
        if raw.status in RETRY_STATUSES:
            raise _RetryableStatus(raw)
        return raw

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> RawResponse:
        url = self.base_url + path
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        attempts = 0
        try:
            async for attempt in self._retrying():
                with attempt:
                    attempts += 1
                    return await self._once(method, url, content)
        except _RetryableStatus as exc:
            status = exc.response.status
            raise UpstreamError(
                f"upstream answered {status} after {attempts} attempt(s); "
                "check the upstream's health or raise max_attempts",
                upstream_status=status,
                attempts=attempts,
            ) from exc
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"upstream did not answer within {self.timeout_s:g} s, {attempts} attempt(s); "
                "raise timeout_s or check the upstream",
                attempts=attempts,
                code="upstream_timeout",
            ) from exc
        except aiohttp.ClientError as exc:
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
        """The upstream's response bytes as they arrive, decompressed (no retry once bytes have
        flowed). ``timeout_s`` bounds each wait for bytes, not the whole stream."""
        url = self.base_url + path
        content = json.dumps(body, separators=(",", ":")).encode()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s,
                                        sock_read=self.timeout_s)  # fmt: skip
        try:
            async with self._http().post(url, data=content, timeout=timeout) as resp:
                if resp.status >= 400:
                    text = (await resp.read()).decode("utf-8", "replace")
                    raise UpstreamError(
                        f"upstream answered {resp.status} to a streaming request: {text[:500]}",
                        upstream_status=resp.status,
                    )
                async for chunk in resp.content.iter_any():
                    yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"upstream stream timed out after {self.timeout_s:g} s", code="upstream_timeout"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream stream failed: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
