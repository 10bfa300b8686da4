"""The ``openai`` upstream: any OpenAI-compatible HTTP API, over one shared connection pool (the
fast path; other providers go through :mod:`guard.upstreams.litellm`).

It speaks HTTP with aiohttp, not through the SDK's per-request machinery: calguard already has
the JSON body and posts those bytes. Profiled under load (``bench/proxy_overhead.py``), building
each request in the SDK cost about as much as the HTTP exchange, and httpx's connection pool
scans every pooled connection on every request (a cost that grows with concurrency).

Retries (tenacity) follow the OpenAI SDK: 408, 409, 429 and 5xx (unless the upstream says
``x-should-retry: false``; always when it says ``true``), dropped connections and timeouts,
honouring ``Retry-After``, bounded in attempts and in total time. When they run out, the last
answer goes back as it was (a 429 stays a 429 with its ``Retry-After``); only when no answer came
at all is it :class:`UpstreamError` (502) or :class:`UpstreamTimeoutError` (504). Either says
``x-should-retry: false`` where calguard asked more than once, so that the client's SDK does not
retry what calguard already retried (its attempts times calguard's). Streams are
retried the same way until their status arrives. Compressed bodies are decompressed, every
layer (:mod:`guard.upstreams.encoding`).
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import yarl
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_after_delay

from guard.errors import UpstreamError, UpstreamTimeoutError
from guard.upstreams.base import Body, Headers, RawResponse, RawStream, not_retried
from guard.upstreams.encoding import Decoding, capped
from guard.upstreams.headers import CREDENTIALS, LINES, from_wire
from guard.upstreams.retries import (
    RetryableStatus,
    Wait,
    given_up,
    retried_enough,
    retryable,
    should_retry,
)

_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_WHOLE_WRITE = 2**20  # aiohttp's own bound for a body it writes in one piece


def _unread(exc: aiohttp.ClientResponseError) -> tuple[str, str]:
    """Why an answer could not be read, and its error code. The parser's own words are not
    passed on: they can quote the upstream's bytes (a header's value)."""
    said = (exc.message or "").lower()
    if "content-encoding" in said:
        return "is in a content coding calguard cannot read", "upstream_encoding"
    if "got more than" in said or "too many headers" in said or "too long" in said:
        return "has larger headers than calguard reads (a field over 8 KB, or over 128 fields)", (
            "upstream_unreadable"
        )
    return "is not HTTP that calguard can read", "upstream_unreadable"


def _headers(resp: aiohttp.ClientResponse) -> dict[str, str]:
    """The answer's header lines as their bytes came: each byte one character (as the server
    writes them back), not aiohttp's UTF-8 reading of them (a UTF-8 value would go out as other
    bytes, one that is not UTF-8 not at all)."""
    return from_wire((k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers)


def _decoding(resp: aiohttp.ClientResponse, said: Mapping[str, str]) -> Decoding:
    """The codings aiohttp left on the body (none on a HEAD's: it has no body)."""
    return Decoding([]) if resp.method == "HEAD" else Decoding.of(said)


def _content_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").partition(LINES)[0]


def _sent(content: Body | None) -> Body | io.BytesIO | None:
    """A body as aiohttp sends it, fresh for each attempt: one over a megabyte (a request with
    an image in it) as a file-like object, which aiohttp writes piece by piece (given as bytes
    it warns that it may hold the event loop)."""
    if isinstance(content, bytes) and len(content) > _WHOLE_WRITE:
        return io.BytesIO(content)
    return content


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
        max_answer_bytes: int = 256_000_000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        # Said in errors and logs: the URL without any user:password in it.
        self.shown_url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session: aiohttp.ClientSession | None = None
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.max_answer_bytes = max_answer_bytes
        self._wait = Wait(max_wait_s)

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use, inside the event loop that serves requests.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # An idle connection is retired before a server with the usual 5 s keep-alive
                # (uvicorn's default) closes it: reusing one it is closing drops the request.
                connector=aiohttp.TCPConnector(limit=512, ttl_dns_cache=300, keepalive_timeout=4),
                # none the client did not send: a body sent without a type goes without one
                # (not as application/octet-stream), a request without Accept without one
                skip_auto_headers=("User-Agent", "Accept", "Content-Type"),
            )
        return self._session

    @property
    def closed(self) -> bool:
        return self._session is None or self._session.closed

    def _retrying(self, attempts: int) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(attempts)
            | stop_after_delay(self.timeout_s + self.max_wait_s * self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(retryable),
            reraise=True,
        )

    def _url(self, path: str, query: str, escaped: bool = False) -> yarl.URL:
        """The URL sent: ``path`` quoted once (unless it comes ``escaped``: a relayed path, as
        the client wrote it), the client's query string exactly as it came (not re-encoded)."""
        sent = path if escaped else quote(path, safe=_PATH_SAFE)
        return yarl.URL(self.base_url + sent + (f"?{query}" if query else ""), encoded=True)

    def _request_headers(self, headers: Headers | None, json_body: bool) -> dict[str, str]:
        out = dict(headers or {})
        if self.headers:  # calguard's own key wins over anything forwarded
            out = {k: v for k, v in out.items() if k.lower() not in CREDENTIALS}
            out.update(self.headers)
        if json_body:
            out["Content-Type"] = "application/json"
        return out

    async def _once(
        self, method: str, url: yarl.URL, content: bytes | None, headers: dict[str, str]
    ) -> RawResponse:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with self._http().request(
            method,
            url,
            data=_sent(content),
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
        ) as resp:
            said = _headers(resp)
            body = await self._body(resp, _decoding(resp, said))
            raw = RawResponse(resp.status, body, _content_type(said), said)
        if should_retry(raw.status, raw.headers, raw.body):
            raise RetryableStatus(raw)
        return raw

    async def _retried(self, what: Any, once: bool = False) -> Any:
        """``what()`` under the retry policy (``once``: asked once); the last answer once
        retries run out."""
        attempts = 0
        try:
            async for attempt in self._retrying(1 if once else self.max_attempts):
                with attempt:
                    attempts += 1
                    return await what()
        except RetryableStatus as exc:
            return given_up(exc.response, attempts)
        except TimeoutError as exc:
            raise retried_enough(
                UpstreamTimeoutError(
                    f"upstream did not answer within {self.timeout_s:g} s, {attempts} "
                    "attempt(s); raise timeout_s or check the upstream",
                    attempts=attempts,
                    code="upstream_timeout",
                )
            ) from exc
        except aiohttp.ClientResponseError as exc:  # it answered; its answer did not parse
            reason, code = _unread(exc)
            raise not_retried(
                UpstreamError(
                    f"the upstream at {self.shown_url} answered, but its answer {reason} "
                    f"({attempts} attempt(s))",
                    attempts=attempts,
                    code=code,
                )
            ) from exc
        except aiohttp.ClientError as exc:
            raise retried_enough(
                UpstreamError(
                    f"cannot reach the upstream at {self.shown_url} after {attempts} "
                    f"attempt(s): {type(exc).__name__}",
                    attempts=attempts,
                    code="upstream_unreachable",
                )
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        headers: Headers | None = None,
        query: str = "",
        content: bytes | None = None,
    ) -> RawResponse:
        content = content or json.dumps(body, separators=(",", ":")).encode()
        h = self._request_headers(headers, True)
        url = self._url(path, query)
        result: RawResponse = await self._retried(lambda: self._once("POST", url, content, h))
        return result

    async def get(self, path: str) -> RawResponse:
        opened = await self.relay("GET", path)
        return RawResponse(opened.status, await opened.read(), opened.content_type, opened.headers)

    async def stream(
        self,
        path: str,
        body: dict[str, Any],
        *,
        headers: Headers | None = None,
        query: str = "",
        content: bytes | None = None,
    ) -> RawStream:
        """Retried until the status arrives; then the bytes as they come (no retry once they
        flow). ``timeout_s`` bounds each wait for bytes, not the whole stream."""
        content = content or json.dumps(body, separators=(",", ":")).encode()
        h = self._request_headers(headers, True)
        return await self._open("POST", self._url(path, query), content, h)

    async def relay(
        self,
        method: str,
        path: str,
        *,
        content: Body | None = None,
        headers: Headers | None = None,
        query: str = "",
    ) -> RawStream:
        """Any other request, as :meth:`stream` takes it: a relayed stream (Assistants runs)
        streams, and lasts as long as its events keep coming. ``path`` goes as it is; a body
        that comes as it comes (a large upload) is asked once, as it cannot be sent again. An
        ``OPTIONS`` (a browser's CORS preflight, which proxies answer without a key) goes
        without calguard's key: it needs none, and it may come from a client that has none."""
        h = self._request_headers(headers, False)
        url = self._url(path, query, escaped=True)
        if method == "OPTIONS":
            h = {k: v for k, v in h.items() if k.lower() not in CREDENTIALS}
            # nor the upstream URL's user:password (aiohttp would send it as Basic auth)
            url = url.with_user(None)
        return await self._open(method, url, content, h)

    async def _open(
        self, method: str, url: yarl.URL, content: Body | None, h: dict[str, str]
    ) -> RawStream:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s
        )

        async def open_() -> RawStream:
            resp = await self._http().request(
                method, url, data=_sent(content), headers=h, timeout=timeout, allow_redirects=False
            )
            said = _headers(resp)
            try:
                decoding = _decoding(resp, said)
            except UpstreamError:
                resp.release()
                raise
            if resp.status >= 400:
                try:
                    body = await self._body(resp, decoding)
                finally:
                    resp.release()
                raw = RawResponse(resp.status, body, _content_type(said), said)
                if should_retry(raw.status, raw.headers, raw.body):
                    raise RetryableStatus(raw)
                return RawStream.whole(raw)
            chunks = self._chunks(resp, decoding)
            return RawStream(
                resp.status, said, _content_type(said), chunks, limit=self.max_answer_bytes
            )

        out = await self._retried(open_, once=not isinstance(content, bytes | None))
        if isinstance(out, RawResponse):  # retries ran out on an error status
            return RawStream.whole(out)
        assert isinstance(out, RawStream)
        return out

    async def _body(self, resp: aiohttp.ClientResponse, decoding: Decoding) -> bytes:
        """The whole body, decoded, up to ``max_answer_bytes``."""
        out = bytearray()
        async for chunk in resp.content.iter_any():
            capped(decoding.feed(chunk), self.max_answer_bytes, out)
        capped(decoding.end(), self.max_answer_bytes, out)
        return bytes(out)

    async def _chunks(
        self, resp: aiohttp.ClientResponse, decoding: Decoding
    ) -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.content.iter_any():
                for piece in decoding.feed(chunk):
                    yield piece
            for piece in decoding.end():
                yield piece
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"upstream stream timed out after {self.timeout_s:g} s", code="upstream_timeout"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream stream failed: {type(exc).__name__}") from exc
        finally:
            resp.release()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
