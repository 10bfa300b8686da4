"""The ``litellm`` upstream: any provider LiteLLM speaks (the breadth path; the OpenAI-compatible
fast path is :class:`guard.upstreams.openai.OpenAIUpstream`).

A route with ``provider: litellm`` sends its calls through ``litellm.acompletion``; the model
name is LiteLLM's (``anthropic/claude-...``, ``openai/...``, ``ollama/...``). LiteLLM's own
retries are off: errors map to the same calguard errors as the fast path.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import openai

from guard.errors import UpstreamError, UpstreamTimeoutError
from guard.upstreams.base import Headers, RawResponse, RawStream


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
        try:
            resp = await self._litellm.acompletion(**self._kwargs(body))
        # LiteLLM's exceptions subclass openai's, which are typed and stable.
        except openai.APITimeoutError as exc:
            raise UpstreamTimeoutError(
                f"LiteLLM upstream timed out: {exc}", code="upstream_timeout"
            ) from exc
        except openai.APIStatusError as exc:
            status = exc.status_code
            if 400 <= status < 500 and status != 429:
                body_ = {
                    "error": {
                        "message": str(exc),
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                }
                return RawResponse(status, json.dumps(body_).encode(), "application/json")
            raise UpstreamError(f"LiteLLM upstream failed: {exc}", upstream_status=status) from exc
        except Exception as exc:  # litellm raises many kinds; none may crash the proxy
            raise UpstreamError(f"LiteLLM upstream failed: {exc}") from exc
        return RawResponse(200, resp.model_dump_json().encode(), "application/json")

    async def stream(
        self,
        path: str,
        body: dict[str, Any],
        *,
        headers: Headers | None = None,
        query: str = "",
        content: bytes | None = None,
    ) -> RawStream:
        if path != "/chat/completions":
            raw = _not_served(path)
            return RawStream(raw.status, {}, raw.content_type, _one(raw.body))
        return RawStream(200, {}, "text/event-stream", self._chunks(body))

    async def _chunks(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        try:
            chunks = await self._litellm.acompletion(**self._kwargs({**body, "stream": True}))
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
        content: bytes | None = None,
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


def _not_served(path: str) -> RawResponse:
    body = {
        "error": {
            "message": f"{path} is not served through LiteLLM",
            "type": "not_found_error",
            "param": None,
            "code": None,
        }
    }
    return RawResponse(404, json.dumps(body).encode(), "application/json")


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body
