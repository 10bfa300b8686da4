"""Issue 8: a route with ``auto_detect`` on never takes over an ordinary prompt that merely
contains a list. Real uvicorn on 127.0.0.1, the real ``openai`` client, and an upstream that
answers like a chat model (its own text, ``n`` choices, logprobs when asked)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request, Response

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread

PLAN = "Rewrite my plan more politely:\n1. Buy milk\n2. Call mom\n3. Fix bike"
FRENCH = "Translate to French:\nA. Good morning\nB. Thank you\nC. See you tomorrow"


class ChatModel:
    """Answers every request with its own reply, as a chat model would; records what it got."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.sent: list[bytes] = []

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            self.bodies.append(body)
            text = body["messages"][-1]["content"]
            reply = "Sure! Here it is, politely:\n" + text.upper()
            logprobs = None
            if body.get("logprobs"):
                token = {"token": "Sure", "logprob": -0.01, "bytes": [83, 117, 114, 101]}
                logprobs = {"content": [{**token, "top_logprobs": [token]}], "refusal": None}
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": reply, "refusal": None},
                    "logprobs": logprobs,
                    "finish_reason": "stop",
                }
                for i in range(int(body.get("n") or 1))
            ]
            done = {
                "id": "chatcmpl-own",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": body["model"],
                "system_fingerprint": "fp_own",
                "choices": choices,
                "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
            }
            self.sent.append(json.dumps(done).encode())
            return Response(self.sent[-1], media_type="application/json")

        return app


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, ChatModel]]:
    model = ChatModel()
    with serve_in_thread(model.app()) as up:
        settings = Settings(
            upstream=f"{up}/v1",
            store=f"sqlite:///{tmp_path / 'cg.db'}",
            routes={"mcq-route": RouteConfig(upstream_model="own", auto_detect=True)},
        )
        with serve_in_thread(create_app(settings)) as proxy:
            yield proxy, model


@pytest.mark.parametrize("prompt", [PLAN, FRENCH])
def test_ordinary_list_prompts_come_back_as_the_upstream_answered(
    served: tuple[str, ChatModel], prompt: str
) -> None:
    url, model = served
    body = {
        "model": "mcq-route",
        "messages": [{"role": "user", "content": prompt}],
        "n": 2,
        "logprobs": True,
        "top_logprobs": 1,
        "response_format": {"type": "text"},
    }
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 200
    assert len(model.bodies) == 1  # one upstream call, not six
    assert r.content == model.sent[-1]  # the upstream's own answer, byte for byte
    sent = model.bodies[-1]
    assert {k: sent[k] for k in ("n", "logprobs", "top_logprobs", "response_format")} == {
        "n": 2,
        "logprobs": True,
        "top_logprobs": 1,
        "response_format": {"type": "text"},
    }
    assert sent["messages"][-1]["content"] == prompt


def test_the_openai_client_gets_every_choice_and_its_logprobs(
    served: tuple[str, ChatModel],
) -> None:
    url, model = served
    with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        r = client.chat.completions.create(
            model="mcq-route",
            messages=[{"role": "user", "content": PLAN}],
            n=3,
            logprobs=True,
            top_logprobs=1,
            response_format={"type": "json_object"},
        )
    assert len(model.bodies) == 1
    assert model.bodies[0]["response_format"] == {"type": "json_object"}
    assert [c.message.content for c in r.choices] == [
        "Sure! Here it is, politely:\n" + PLAN.upper()
    ] * 3
    assert r.choices[0].logprobs is not None
    assert r.choices[0].logprobs.content is not None
    assert r.choices[0].logprobs.content[0].token == "Sure"
    assert r.choices[0].message.refusal is None
    assert "guard" not in (r.model_extra or {})


def test_a_real_mcq_on_the_same_route_is_still_calibrated(
    served: tuple[str, ChatModel],
) -> None:
    url, model = served
    question = "Which is 2 + 2?\nA. three\nB. four\nC. five\nAnswer:"
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "mcq-route", "messages": [{"role": "user", "content": question}]},
        timeout=30,
    )
    # The chat model answers in prose, so the answer itself means little; the route did take
    # the MCQ on: several orders were asked and the reply carries the evidence.
    assert r.json()["guard"]["task"] == "mcq"
    assert len(model.bodies) > 1
