"""A scripted upstream for the classification and judge tasks (every answer a function of the
request), with the real openai client against a real calguard app on 127.0.0.1 in front of it
(``proxied``) or the in-process wrapper around a client of it (``wrapped``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import guard
from guard.config import Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread

Answer = dict[str, Any] | tuple[int, dict[str, Any]]
Respond = Callable[[dict[str, Any]], Answer]

REVIEW = "Review: ok\nSentiment:"
JUDGE = "Which response is better?\nResponse A: {}\nResponse B: {}\nAnswer A or B."


def chat(content: str | None, top: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    """A chat completion whose first position's top_logprobs are ``top`` (token, probability)."""
    logprobs = None
    if top is not None:
        tl = [{"token": t, "logprob": math.log(p), "bytes": None} for t, p in top]
        pos = {"token": tl[0]["token"], "logprob": tl[0]["logprob"], "bytes": None}
        logprobs = {"content": [{**pos, "top_logprobs": tl}], "refusal": None}
    msg = {"role": "assistant", "content": content}
    return {
        "id": "chatcmpl-s",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "up",
        "choices": [{"index": 0, "message": msg, "logprobs": logprobs, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
    }


def judge_answer(body: dict[str, Any]) -> Answer:
    """A judge that prefers the first response shown, and a yes-leaning classifier."""
    text = body["messages"][-1]["content"]
    if "Response A:" in text:
        return chat("A", [("A", 0.8), ("B", 0.2)])
    return chat(" yes", [(" yes", 0.6), (" no", 0.3)])


@contextmanager
def scripted(respond: Respond) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An upstream answering each chat body with ``respond(body)``; yields (base URL, bodies)."""
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append(body)
        out = respond(body)
        status, answer = out if isinstance(out, tuple) else (200, out)
        return JSONResponse(answer, status_code=status)

    with serve_in_thread(app) as url:
        yield f"{url}/v1", seen


@contextmanager
def proxied(
    respond: Respond, tmp_path: Path
) -> Iterator[tuple[openai.OpenAI, list[dict[str, Any]]]]:
    with scripted(respond) as (up, seen):
        settings = Settings(upstream=up, store=f"sqlite:///{tmp_path / 'p.db'}")
        with (
            serve_in_thread(create_app(settings)) as proxy,
            openai.OpenAI(base_url=f"{proxy}/v1", api_key="t", max_retries=0) as client,
        ):
            yield client, seen


@contextmanager
def wrapped(
    respond: Respond, tmp_path: Path
) -> Iterator[tuple[openai.OpenAI, list[dict[str, Any]]]]:
    with (
        scripted(respond) as (up, seen),
        openai.OpenAI(base_url=up, api_key="t", max_retries=0) as inner,
    ):
        client = guard.wrap(inner, store=f"sqlite:///{tmp_path / 'w.db'}")
        try:
            yield client, seen
        finally:
            client.close()  # type: ignore[attr-defined]


FACES = {"proxy": proxied, "wrapper": wrapped}


def ask(client: openai.OpenAI, content: str, options: dict[str, Any], **kw: Any) -> Any:
    return client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": content}],
        extra_body={"guard": options},
        **kw,
    )


def evidence(r: Any) -> dict[str, Any]:
    return dict((r.model_extra or {})["guard"])
