"""Issue 8, on the wire: what calguard does not act on reaches both sides exactly as sent —
headers both ways, the query string, compressed streams, the upstream's own status codes, the
model list, and the Responses and Embeddings APIs through the pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"
UPSTREAM_HEADERS = {
    "x-request-id": "req_upstream_123",
    "x-ratelimit-remaining-requests": "99",
    "x-ratelimit-limit-tokens": "10000",
    "openai-processing-ms": "12",
    "openai-version": "2020-10-01",
}
BLOCK = [{"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"}]


class Stack:
    def __init__(self, state: FakeUpstreamState, url: str) -> None:
        self.state = state
        self.url = url
        self.client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-client", max_retries=0)


@pytest.fixture(params=[False, True], ids=["plain", "gzip"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    state = FakeUpstreamState(SimulatedResponder(), gzip=request.param)
    state.response_headers.update(UPSTREAM_HEADERS)
    with serve_in_thread(create_fake_upstream(state)) as up:
        settings = Settings(
            upstream=f"{up}/v1",
            upstream_key="sk-upstream",
            store=f"sqlite:///{tmp_path / 't.db'}",
            max_attempts=2,
            retry_max_wait_s=0.01,
            routes={"guarded": RouteConfig(upstream_model="m", policies=BLOCK)},
        )
        with serve_in_thread(create_app(settings)) as url:
            st = Stack(state, url)
            yield st
            st.client.close()


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_the_upstreams_response_headers_reach_the_client(stack: Stack) -> None:
    raw = stack.client.chat.completions.with_raw_response.create(model="m", messages=user("hi"))
    for k, v in UPSTREAM_HEADERS.items():
        assert raw.headers[k] == v, k
    assert raw.headers["x-calguard-request-id"].startswith("cg-")
    assert raw.parse().choices[0].message.content == "echo: hi"
    with stack.client.chat.completions.with_streaming_response.create(
        model="m", messages=user("hi"), stream=True
    ) as streamed:
        assert streamed.headers["x-ratelimit-remaining-requests"] == "99"
        assert streamed.headers["x-request-id"] == "req_upstream_123"


def test_compressed_upstream_streams_decode_in_the_sdk(stack: Stack) -> None:
    text = "".join(
        c.choices[0].delta.content or ""
        for c in stack.client.chat.completions.create(
            model="m", messages=user("a long enough answer to span chunks"), stream=True
        )
        if c.choices
    )
    assert text == "echo: a long enough answer to span chunks"
    r = httpx.post(
        f"{stack.url}/v1/chat/completions",
        json={"model": "m", "messages": user("x"), "stream": True},
    )
    assert "content-encoding" not in r.headers  # calguard decompressed: the bytes are plain
    assert r.text.endswith("data: [DONE]\n\n")


def test_the_clients_openai_headers_and_query_reach_the_upstream(stack: Stack) -> None:
    sent = {
        "OpenAI-Organization": "org-1",
        "OpenAI-Project": "proj-1",
        "OpenAI-Beta": "assistants=v2",
        "Idempotency-Key": "idem-1",
    }
    stack.client.chat.completions.create(
        model="m",
        messages=user("hi"),
        extra_headers=sent,
        extra_query={"api-version": "2024-06-01"},
    )
    got = stack.state.headers[-1]
    for k, v in sent.items():
        assert got[k.lower()] == v
    assert got["authorization"] == "Bearer sk-upstream"  # never the client's own key
    assert stack.state.queries[-1] == "api-version=2024-06-01"


def test_a_streamed_4xx_comes_back_as_that_4xx_once(stack: Stack) -> None:
    stack.state.faults[:] = [(404, {})]
    with pytest.raises(openai.NotFoundError) as exc:
        list(stack.client.chat.completions.create(model="x", messages=user("hi"), stream=True))
    assert exc.value.body["message"] == "injected 404"  # type: ignore[index]
    assert not stack.state.faults


def test_a_429_after_the_retries_stays_a_429_with_retry_after(stack: Stack) -> None:
    stack.state.faults[:] = [(429, {"retry-after": "0"})] * 2
    with pytest.raises(openai.RateLimitError) as exc:
        stack.client.chat.completions.create(model="m", messages=user("hi"))
    assert exc.value.response.headers["retry-after"] == "0"
    stack.state.faults[:] = [(429, {"retry-after": "0"})] * 2
    with pytest.raises(openai.RateLimitError):
        list(stack.client.chat.completions.create(model="m", messages=user("hi"), stream=True))
    stack.state.faults[:] = [(503, {}), (429, {"retry-after": "0"})]
    with pytest.raises(openai.RateLimitError):  # a calibrated request: the last answer too
        stack.client.chat.completions.create(
            model="m", messages=user(QUESTION), extra_body={"guard": {"calibration": "none"}}
        )


def test_a_5xx_before_a_stream_starts_is_retried(stack: Stack) -> None:
    stack.state.faults[:] = [(503, {})]
    chunks = list(stack.client.chat.completions.create(model="m", messages=user("hi"), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hi"


def test_models_pass_errors_and_serve_one_model(stack: Stack) -> None:
    assert [m.id for m in stack.client.models.list().data] == ["sim-biased-llm", "guarded"]
    assert stack.client.models.retrieve("guarded").owned_by == "calguard"
    stack.state.faults[:] = [(401, {})]
    with pytest.raises(openai.AuthenticationError):
        stack.client.models.list()


def test_responses_api_through_the_pipeline(stack: Stack) -> None:
    r = stack.client.responses.create(model="m", input="hello there")
    assert r.output_text == "echo: hello there"
    events = list(stack.client.responses.create(model="m", input="hello there", stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "echo: hello there"
    n = len(stack.state.requests)
    with pytest.raises(openai.BadRequestError):
        stack.client.responses.create(
            model="guarded", input=[{"role": "user", "content": "a forbidden word"}]
        )
    assert len(stack.state.requests) == n  # blocked before the upstream


def test_embeddings_through_the_pipeline(stack: Stack) -> None:
    r = stack.client.embeddings.create(model="m", input=["a", "bb"])
    assert [d.embedding[0] for d in r.data] == [1.0, 2.0]
    with pytest.raises(openai.BadRequestError):
        stack.client.embeddings.create(model="guarded", input=["fine", "forbidden"])


def test_calibrated_streams_end_with_usage_and_keep_the_fingerprint(stack: Stack) -> None:
    chunks: list[Any] = list(
        stack.client.chat.completions.create(
            model="m",
            messages=user(QUESTION),
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"guard": {"calibration": "cyclic"}},
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == 44  # the four orders' usage, added up
    details = chunks[-1].usage.prompt_tokens_details  # before: dropped
    assert details is not None
    assert details.cached_tokens == 32
    r = stack.client.chat.completions.create(
        model="m", messages=user(QUESTION), extra_body={"guard": {"calibration": "pride"}}
    )
    assert r.system_fingerprint == "fp_fake"  # the upstream's, on calguard's own reply


@pytest.mark.parametrize("stream", [False, True])
def test_a_calibrated_reply_carries_the_accounts_rate_limits(stack: Stack, stream: bool) -> None:
    """A reply calguard makes from several calls says what the latest said of the account
    (its rate limits, organisation, API version), not of itself (its id, its timing); before,
    none of it, so a client tracking its rate limits saw none behind calguard."""
    with stack.client.chat.completions.with_streaming_response.create(
        model="m",
        messages=user(QUESTION),
        stream=stream,
        extra_body={"guard": {"calibration": "cyclic"}},
    ) as r:
        r.read()
    for name in ("x-ratelimit-remaining-requests", "x-ratelimit-limit-tokens", "openai-version"):
        assert r.headers[name] == UPSTREAM_HEADERS[name]
    assert r.headers["x-request-id"] != UPSTREAM_HEADERS["x-request-id"]  # calguard's own
    assert "openai-processing-ms" not in r.headers


def test_the_clients_own_key_is_forwarded_only_when_asked(tmp_path: Path) -> None:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        for forward, expected in ((False, None), (True, "Bearer sk-client")):
            settings = Settings(
                upstream=f"{up}/v1",
                store=f"sqlite:///{tmp_path / 'f.db'}",
                forward_client_key=forward,
            )
            with (
                serve_in_thread(create_app(settings)) as url,
                openai.OpenAI(base_url=f"{url}/v1", api_key="sk-client", max_retries=0) as c,
            ):
                c.chat.completions.create(model="m", messages=user("hi"))
            assert state.headers[-1].get("authorization") == expected


def test_an_upstream_that_refuses_logprobs_is_sampled_once_and_remembered(tmp_path: Path) -> None:
    """llama.cpp without logits_all answers 500 'logprobs is not supported' and ignores n:
    calguard must not retry the refusal, must sample instead (repeating calls until it has its
    samples), remember the refusal for the model, and count every HTTP call."""
    state = FakeUpstreamState(SimulatedResponder(), refuse_logprobs=True, ignore_n=True)
    with serve_in_thread(create_fake_upstream(state)) as up:
        settings = Settings(
            upstream=f"{up}/v1", store=f"sqlite:///{tmp_path / 'r.db'}", max_attempts=3
        )
        with (
            serve_in_thread(create_app(settings)) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            guard = {"guard": {"calibration": "none"}}
            r = client.chat.completions.create(model="m", messages=user(QUESTION), extra_body=guard)
            g = (r.model_extra or {})["guard"]
            assert r.choices[0].message.content in "ABCD"
            assert g["upstream_calls"] == 1 + 8  # the refused logprob call, then 8 single samples
            assert len(state.requests) == 9  # the refusal was not retried
            assert sum(1 for b in state.requests if b.get("logprobs")) == 1
            probs = g["raw_probs"]
            assert max(probs) > 0.3  # eight real samples, not one sample smoothed into ties
            r = client.chat.completions.create(model="m", messages=user(QUESTION), extra_body=guard)
            assert (r.model_extra or {})["guard"]["upstream_calls"] == 8  # remembered
            assert sum(1 for b in state.requests if b.get("logprobs")) == 1


def test_a_pass_through_body_reaches_the_upstream_byte_for_byte(stack: Stack) -> None:
    sent = (
        b'{ "model":"m",  "messages":[{"role":"user","content":"hi"}],'
        b'"temperature":0.10000000000000000555, "x_vendor":{"k":[1,2.50]} }'
    )
    r = httpx.post(
        f"{stack.url}/v1/chat/completions",
        content=sent,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200
    assert stack.state.raw_requests[-1] == sent  # spacing, number spelling, unknown fields
    guarded = sent.replace(b'"model":"m"', b'"model":"m", "guard": {"task": "none"}')
    httpx.post(
        f"{stack.url}/v1/chat/completions",
        content=guarded,
        headers={"content-type": "application/json"},
    )
    assert b"guard" not in stack.state.raw_requests[-1]  # calguard's own field never goes on
