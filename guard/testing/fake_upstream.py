"""An in-process, OpenAI-compatible fake upstream: a simulated biased LLM, or a replay of recorded
distributions. For tests, the demo and benchmarks — never a real model.

- MCQ prompts (options found in the last user message) are answered with logprobs over the
  option IDs from a :class:`McqResponder`: :class:`SimulatedResponder` (seeded, biased toward ID
  positions) or :class:`ReplayResponder` (the recorded rows of ``shared/data/recorded``, for
  whatever cyclic order is asked).
- Other prompts get a short deterministic echo.
- ``logprobs=False`` simulates an API without logprobs: answers are sampled (``n`` choices) as
  text ("The answer is (B)."); at ``temperature: 0``, the most likely one (greedy).
- ``stream: true`` is answered with SSE chunks.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from calibrators.permutation import cyclic_shift
from guard.evaluation.recorded import McqRecords
from guard.tasks.prompt_text import find_options, last_user_text
from guard.testing.fake_endpoints import WireMiddleware, add_endpoints, injected, take
from guard.testing.simulated import SimulatedMcqModel

FloatArray = npt.NDArray[np.float64]


class McqResponder(Protocol):
    def __call__(self, prefix: str, shown: Sequence[str]) -> FloatArray | None:
        """Distribution over the displayed positions, or None for an unknown question."""


def _h(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


@dataclass
class SimulatedResponder:
    """A simulated model (:class:`SimulatedMcqModel`) that knows the answer key it is given:
    ``answers`` maps question text -> correct option text. Questions it has no key for get the
    option with the smallest hash as "correct" (deterministic, arbitrary)."""

    model: SimulatedMcqModel = field(default_factory=SimulatedMcqModel)
    answers: dict[str, str] = field(default_factory=dict)

    def __call__(self, prefix: str, shown: Sequence[str]) -> FloatArray | None:
        gold = next((g for q, g in self.answers.items() if q in prefix), None)
        if gold is None or gold not in shown:
            gold = min(shown, key=_h)
        return self.model.answer_text(_h(prefix), shown, gold)


@dataclass
class ReplayResponder:
    """Recorded distributions: the question is found by its text, the order by its contents."""

    records: McqRecords
    questions: list[str]

    def __call__(self, prefix: str, shown: Sequence[str]) -> FloatArray | None:
        n = self.records.n_options
        for q, text in enumerate(self.questions):
            if text not in prefix:
                continue
            options = self.records.options[q]
            for k in range(n):
                perm = cyclic_shift(n, k)
                if [options[i] for i in perm] == list(shown):
                    return np.asarray(self.records.probs_cyclic[q][k], dtype=np.float64)
            return None
        return None


TextResponder = Callable[[str], dict[str, float] | None]
"""For a non-MCQ prompt: next-token probabilities (token -> p), or None for an echo."""


@dataclass
class FakeUpstreamState:
    responder: McqResponder
    text_responder: TextResponder | None = None
    logprobs: bool = True
    refuse_logprobs: bool = False  # answer 500 "logprobs is not supported" (llama.cpp's way)
    ignore_n: bool = False  # one choice whatever n says (llama.cpp's way)
    calls: int = 0
    models: tuple[str, ...] = ("sim-biased-llm",)
    # Fault injection: the next len(faults) requests answer with these statuses.
    faults: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    last_body: bytes = b""  # the exact bytes of the last non-streamed reply
    requests: list[dict[str, Any]] = field(default_factory=list)  # every body received
    headers: list[dict[str, str]] = field(default_factory=list)  # their headers, lower-case
    queries: list[str] = field(default_factory=list)  # their query strings
    raw_requests: list[bytes] = field(default_factory=list)  # their bytes, as received
    # On the wire: headers added to every answer; gzip-compress every answer (streams too).
    response_headers: dict[str, str] = field(default_factory=dict)
    gzip: bool = False


def _lp(p: float) -> float:
    return math.log(max(p, 1e-12))


def _completion(body: dict[str, Any], choices: list[dict[str, Any]], n: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake-{n}",
        "object": "chat.completion",
        "created": 1_700_000_000 + n,  # deterministic, so replies can be compared byte for byte
        "model": body.get("model", "sim-biased-llm"),
        "choices": choices,
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 1,
            "total_tokens": 11,
            "prompt_tokens_details": {"cached_tokens": 8},  # as OpenAI's answers carry them
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "system_fingerprint": "fp_fake",
    }


def _choices(
    state: FakeUpstreamState,
    body: dict[str, Any],
    ids: Sequence[str],
    p: FloatArray,
    answer_text: str = "The answer is ({}).",
) -> list[dict[str, Any]]:
    want_logprobs = bool(body.get("logprobs")) and state.logprobs
    if want_logprobs:
        k = min(int(body.get("top_logprobs") or 0), len(ids)) or 1
        order = np.argsort(-p)
        top = [{"token": ids[i], "logprob": _lp(float(p[i])), "bytes": None} for i in order[:k]]
        best = ids[int(order[0])]
        logprobs = {
            "content": [
                {"token": best, "logprob": top[0]["logprob"], "bytes": None, "top_logprobs": top}
            ],
            "refusal": None,
        }
        msg = {"role": "assistant", "content": best}
        return [{"index": 0, "message": msg, "logprobs": logprobs, "finish_reason": "stop"}]
    # No logprobs on offer: sample answers, seeded by the prompt so a retry repeats itself;
    # at temperature 0, the most likely answer every time (greedy decoding).
    n = 1 if state.ignore_n else int(body.get("n") or 1)
    seed = _h(json.dumps(body.get("messages"), sort_keys=True)) + state.calls
    rng = np.random.default_rng(seed)
    if body.get("temperature") == 0:
        picks = np.full(n, int(np.argmax(p)))
    else:
        picks = rng.choice(len(ids), size=n, p=p / p.sum())
    return [
        {
            "index": i,
            "message": {"role": "assistant", "content": answer_text.format(ids[j])},
            "logprobs": None,
            "finish_reason": "stop",
        }
        for i, j in enumerate(picks)
    ]


def complete(
    state: FakeUpstreamState, body: dict[str, Any], answer_text: str = "The answer is ({})."
) -> dict[str, Any]:
    """The chat completion (a dict, as on the wire) the fake answers ``body`` with; a sampled
    MCQ answer reads ``answer_text`` with the ID in it. The HTTP face and the inspect_ai model
    provider (:mod:`guard.testing.inspect_provider`) both answer through this."""
    found = last_user_text(body.get("messages") or [])
    text = found[1] if found else ""
    mcq = find_options(text) if text else None
    state.calls += 1
    if mcq is not None:
        p = state.responder(text[: mcq.spans[0][0]], mcq.options)
        if p is not None:
            choices = _choices(state, body, mcq.ids, p, answer_text)
            return _completion(body, choices, state.calls)
    dist = state.text_responder(text) if state.text_responder and text else None
    if dist:
        tokens = list(dist)
        p = np.array([dist[t] for t in tokens], dtype=np.float64)
        # Free text: a sampled answer is the token itself, not "The answer is (X).".
        choices = _choices(state, body, tokens, p / p.sum(), answer_text="{}")
        return _completion(body, choices, state.calls)
    reply = f"echo: {text[:200]}"
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": reply},
        "logprobs": None,
        "finish_reason": "stop",
    }
    return _completion(body, [choice], state.calls)


async def _sse(completion: dict[str, Any], usage: bool) -> AsyncIterator[bytes]:
    base = {k: completion[k] for k in ("id", "created", "model")}
    content = completion["choices"][0]["message"]["content"]
    pieces = [content[i : i + 8] for i in range(0, len(content), 8)] or [""]
    first = True
    for piece in pieces:
        delta = {"role": "assistant", "content": piece} if first else {"content": piece}
        first = False
        chunk = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    last = {
        **base,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    yield f"data: {json.dumps(last)}\n\n".encode()
    if usage:  # stream_options.include_usage: a last chunk with no choices, as OpenAI's
        tail = {**base, "object": "chat.completion.chunk", "choices": []}
        yield f"data: {json.dumps({**tail, 'usage': completion['usage']})}\n\n".encode()
    yield b"data: [DONE]\n\n"


def create_fake_upstream(state: FakeUpstreamState) -> FastAPI:
    """The fake as an ASGI app; mount it or serve it with uvicorn on 127.0.0.1."""
    app = FastAPI(title="calguard fake upstream (simulation)")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await take(state, request)
        if isinstance(body, Response):
            return body
        if state.refuse_logprobs and body.get("logprobs"):
            err = {"error": {"code": 500, "message": "logprobs is not supported",
                             "type": "server_error"}}  # fmt: skip
            return JSONResponse(err, status_code=500)
        completion = complete(state, body)
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(_sse(completion, usage), media_type="text/event-stream")
        state.last_body = json.dumps(completion).encode()
        return Response(state.last_body, media_type="application/json")

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        if state.faults:
            return injected(state, request)
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "calguard-fake"}
            for m in state.models
        ]
        return JSONResponse({"object": "list", "data": data})

    add_endpoints(app, state)
    return WireMiddleware(app, state)  # type: ignore[return-value]
