"""The ``litellm`` upstream: any provider LiteLLM speaks (the breadth path; the OpenAI-compatible
fast path is :class:`guard.upstreams.openai.OpenAIUpstream`).

A route with ``provider: litellm`` sends its calls through ``litellm.acompletion``; the model
name is LiteLLM's (``anthropic/claude-...``, ``openai/...``, ``ollama/...``). LiteLLM's own
retries are off. As on the fast path, a provider's error answer goes back as that answer: its
status (a 429 stays a 429, a stream's 400 a 400), an OpenAI error body with the provider's
type, param and code where it gave them, and its ``Retry-After``; only a failure to get an
answer at all is calguard's 502 or 504.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import openai

from guard.errors import UpstreamError, UpstreamTimeoutError
from guard.upstreams.base import Body, Headers, RawResponse, RawStream

JSON = "application/json"


class LiteLLMUpstream:
    def __init__(
        self, api_base: str | None = None, api_key: str | None = None, timeout_s: float = 60.0
    ) -> None:
        # The cost map is otherwise fetched from the network at import time.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        self._litellm = litellm
        self.api_base = api_base
        self.api_key = api_key
        self.timeout_s = timeout_s

    def _kwargs(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body as LiteLLM's arguments. Where the call goes and with which credentials is
        the route's alone: a client can never name its own ``api_base`` (and so receive the
        route's key), nor set LiteLLM's call controls."""
        kw = {k: v for k, v in body.items() if not _call_control(k)}
        if self.api_base:
            kw["api_base"] = self.api_base
        if self.api_key:
            kw["api_key"] = self.api_key
        kw["timeout"] = self.timeout_s
        kw["num_retries"] = 0
        return kw

    async def _call(self, body: dict[str, Any]) -> Any:
        """LiteLLM's answer to ``body``, or the provider's error answer (a :class:`RawResponse`);
        a failure to get one raises :class:`UpstreamError`."""
        try:
            return await self._litellm.acompletion(**self._kwargs(body))
        # LiteLLM's exceptions subclass openai's, which are typed and stable.
        except openai.APITimeoutError as exc:
            raise UpstreamTimeoutError(
                f"LiteLLM upstream timed out: {exc}", code="upstream_timeout"
            ) from exc
        except openai.APIStatusError as exc:
            return _answer(exc)
        except Exception as exc:  # litellm raises many kinds; none may crash the proxy
            raise UpstreamError(f"LiteLLM upstream failed: {exc}") from exc

    async def post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        headers: Headers | None = None,
        query: str = "",
        content: bytes | None = None,
    ) -> RawResponse:
        if path != "/chat/completions":
            return _not_served(path)
        resp = await self._call(body)
        if isinstance(resp, RawResponse):
            return resp
        return RawResponse(200, resp.model_dump_json().encode(), JSON)

    async def stream(
        self,
        path: str,
        body: dict[str, Any],
        *,
        headers: Headers | None = None,
        query: str = "",
        content: bytes | None = None,
    ) -> RawStream:
        """Opened here, so an error the provider answers before the stream is that answer."""
        if path != "/chat/completions":
            return RawStream.whole(_not_served(path))
        chunks = await self._call({**body, "stream": True})
        if isinstance(chunks, RawResponse):
            return RawStream.whole(chunks)
        return RawStream(200, {}, "text/event-stream", self._chunks(chunks))

    async def _chunks(self, chunks: Any) -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                yield f"data: {chunk.model_dump_json()}\n\n".encode()
        except Exception as exc:
            raise UpstreamError(f"LiteLLM stream failed: {exc}") from exc
        yield b"data: [DONE]\n\n"

    async def relay(
        self,
        method: str,
        path: str,
        *,
        content: Body | None = None,
        headers: Headers | None = None,
        query: str = "",
    ) -> RawStream:
        return RawStream.whole(_not_served(path))

    async def get(self, path: str) -> RawResponse:
        return RawResponse(200, b'{"object": "list", "data": []}', "application/json")

    async def aclose(self) -> None:
        return None


_CONTROLS = re.compile(
    r"(api_key|api_base|base_url|api_version|^organization$|credentials|_token$|^client_secret|"
    r"^aws_|^vertex_|^azure|^custom_llm_provider$|^timeout$|^num_retries$|^max_retries$|"
    r"^mock_|^litellm_|^metadata$|^headers$|^extra_headers$|^input_cost|^output_cost|^fallbacks$)"
)


def _call_control(key: str) -> bool:
    """A LiteLLM argument that says where or how the call is made, not what is asked."""
    return bool(_CONTROLS.search(key))


RETRY_AFTER = ("retry-after", "retry-after-ms")  # when the provider says to ask again


def _answer(exc: openai.APIStatusError) -> RawResponse:
    """The provider's error answer, as LiteLLM raised it: its status, an OpenAI error body, and
    when to retry."""
    said = _error_object(exc)
    kind = "server_error" if exc.status_code >= 500 else "invalid_request_error"
    error = {
        "message": str(exc),
        "type": _text(said.get("type")) or kind,
        "param": _text(said.get("param")),
        "code": _text(said.get("code")),
    }
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    kept = {k: str(v) for k in RETRY_AFTER if (v := headers.get(k)) is not None}
    return RawResponse(exc.status_code, json.dumps({"error": error}).encode(), JSON, kept)


def _error_object(exc: openai.APIStatusError) -> dict[str, Any]:
    """The provider's error object where LiteLLM kept it: as the body, or in its answer."""
    if isinstance(exc.body, dict):
        return exc.body
    try:
        data = json.loads(exc.response.content)
    except Exception:  # LiteLLM makes its responses in many ways: one may have no body
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _not_served(path: str) -> RawResponse:
    body = {
        "error": {
            "message": f"{path} is not served through LiteLLM",
            "type": "not_found_error",
            "param": None,
            "code": None,
        }
    }
    return RawResponse(404, json.dumps(body).encode(), JSON)
