"""The proxy end to end: real uvicorn on 127.0.0.1, the real ``openai`` client, a real SQLite file,
and the in-process fake upstream (a simulated biased LLM) behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from calibrators.planner import PermutationPlanner
from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.store.sqlite import SQLiteStore
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread

QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"


class Stack:
    def __init__(self, state: FakeUpstreamState, proxy_url: str, db: Path, upstream: str) -> None:
        self.state = state
        self.url = proxy_url
        self.db = db
        self.upstream = upstream
        self.client = openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="test", max_retries=0)

    def guard_of(self, resp: Any) -> dict[str, Any]:
        return dict((resp.model_extra or {})["guard"])


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        settings = Settings(
            upstream=f"{up}/v1",
            store=f"sqlite:///{tmp_path / 'calguard.db'}",
            max_attempts=3,
            retry_max_wait_s=0.05,
            routes={
                "alias": RouteConfig(
                    upstream_model="sim-biased-llm", mcq="cyclic", auto_detect=True
                ),
                # enough for a refresh on two options (1.02), not on four (1.06)
                "lean": RouteConfig(upstream_model="sim-biased-llm", budget=1.03),
                "near-random": RouteConfig(
                    upstream_model="sim-biased-llm", mcq="adaptive", pooling="mean"
                ),
            },
        )
        with serve_in_thread(create_app(settings)) as proxy:
            st = Stack(state, proxy, tmp_path / "calguard.db", f"{up}/v1")
            yield st
            st.client.close()


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# -- pass-through --------------------------------------------------------------------------


def test_passthrough_chat_returns_the_upstream_bytes(stack: Stack) -> None:
    # An MCQ with task none, asking for logprobs: nothing may be touched.
    body = {
        "model": "m",
        "messages": user(QUESTION),
        "logprobs": True,
        "top_logprobs": 4,
        "guard": {"task": "none"},
    }
    r = httpx.post(f"{stack.url}/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert r.content == stack.state.last_body
    assert r.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    assert "guard" not in stack.state.requests[-1]  # the guard object never goes upstream


def test_passthrough_chat_with_the_openai_client(stack: Stack) -> None:
    r = stack.client.chat.completions.create(model="m", messages=user("hello"))
    assert r.choices[0].message.content == "echo: hello"
    assert "guard" not in (r.model_extra or {})


def test_passthrough_streams_the_upstream_chunks(stack: Stack) -> None:
    chunks = stack.client.chat.completions.create(
        model="m", messages=user("hello there, a stream"), stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there, a stream"


def test_completions_pass_through(stack: Stack) -> None:
    r = httpx.post(f"{stack.url}/v1/completions", json={"model": "m", "prompt": "hi"})
    assert r.status_code == 200
    assert r.content == stack.state.last_body
    assert stack.client.completions.create(model="m", prompt="hi").choices[0].text == "echo: hi"
    chunks = stack.client.completions.create(model="m", prompt="hi there", stream=True)
    assert "".join(c.choices[0].text for c in chunks) == "echo: hi there"


def test_an_upstream_error_passes_back(stack: Stack) -> None:
    stack.state.faults.append((404, {}))
    with pytest.raises(openai.NotFoundError):
        stack.client.chat.completions.create(model="m", messages=user("hi"))


# -- calibrated MCQ ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calibration", "calls", "role"),
    [
        ("none", 1, "baseline"),
        ("cyclic", 4, "baseline"),
        ("full", 24, "baseline"),
        ("pride", 4, "warmup"),
        ("adaptive", 4, "warmup"),
    ],
)
def test_mcq_with_each_calibration(stack: Stack, calibration: str, calls: int, role: str) -> None:
    n_before = len(stack.state.requests)
    r = stack.client.chat.completions.create(
        model="m", messages=user(QUESTION), extra_body={"guard": {"calibration": calibration}}
    )
    g = stack.guard_of(r)
    assert r.choices[0].message.content == g["answer"] in "ABCD"
    assert g["index"] == "ABCD".index(g["answer"])
    assert g["task"] == "mcq"
    assert g["calibration"] == calibration
    assert g["upstream_calls"] == calls == len(stack.state.requests) - n_before
    assert g["role"] == role
    assert sum(g["probs"]) == pytest.approx(1.0, abs=1e-4)
    # Every upstream prompt kept the IDs and all other text; only option texts moved.
    for body in stack.state.requests[n_before:]:
        sent = body["messages"][-1]["content"]
        assert sent.startswith("Question: Which is 2 + 2?\nOptions:\nA. ")
        assert sent.endswith("\nAnswer:")
        assert sorted(line[3:] for line in sent.splitlines()[2:6]) == sorted(
            ["three", "four", "five", "six"]
        )
        assert body["logprobs"] is True


def test_mcq_after_warmup_costs_one_call_and_divides_out_the_prior(stack: Stack) -> None:
    guard = {"calibration": "pride"}
    for _ in range(4):  # the route's warm-up
        stack.client.chat.completions.create(
            model="m", messages=user(QUESTION), extra_body={"guard": guard}
        )
    r = stack.client.chat.completions.create(
        model="m", messages=user(QUESTION), extra_body={"guard": guard}
    )
    g = stack.guard_of(r)
    assert (g["upstream_calls"], g["role"]) == (1, "single")
    assert g["prior"] is not None
    assert g["prior"] != [0.25] * 4


def test_mcq_streams_the_calibrated_answer(stack: Stack) -> None:
    chunks = list(
        stack.client.chat.completions.create(
            model="m",
            messages=user(QUESTION),
            stream=True,
            extra_body={"guard": {"calibration": "cyclic"}},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["guard"]["answer"] == text


def test_route_maps_the_model_and_its_default_calibration(stack: Stack) -> None:
    r = stack.client.chat.completions.create(model="alias", messages=user(QUESTION))
    assert stack.guard_of(r)["calibration"] == "cyclic"
    assert stack.state.requests[-1]["model"] == "sim-biased-llm"


def test_explicit_options_and_numbered_ids(stack: Stack) -> None:
    text = "Pick the colour of the sky.\n1) green\n2) blue\n3) red"
    r = stack.client.chat.completions.create(
        model="m",
        messages=user(text),
        extra_body={
            "guard": {"task": "mcq", "calibration": "cyclic", "options": ["green", "blue", "red"]}
        },
    )
    assert r.choices[0].message.content in ("1", "2", "3")
    assert stack.guard_of(r)["upstream_calls"] == 3


def test_state_survives_a_restart(stack: Stack) -> None:
    for _ in range(4):  # the warm-up, through the first proxy
        stack.client.chat.completions.create(
            model="m", messages=user(QUESTION), extra_body={"guard": {"calibration": "pride"}}
        )
    # A second proxy on the same store file (a restart, or another worker) continues the key.
    settings = Settings(upstream=stack.upstream, store=f"sqlite:///{stack.db}")
    with (
        serve_in_thread(create_app(settings)) as second,
        openai.OpenAI(base_url=f"{second}/v1", api_key="test", max_retries=0) as c2,
    ):
        r = c2.chat.completions.create(
            model="m", messages=user(QUESTION), extra_body={"guard": {"calibration": "pride"}}
        )
    g = stack.guard_of(r)
    assert (g["role"], g["upstream_calls"]) == ("single", 1)


def test_a_route_chooses_how_its_adaptive_keys_pool(stack: Stack) -> None:
    """A route's ``pooling`` reaches the planner of the keys it makes; another route's keys
    take the planner's default (the Gaussian pooling)."""
    for model in ("near-random", "m"):
        stack.client.chat.completions.create(
            model=model, messages=user(QUESTION), extra_body={"guard": {"calibration": "adaptive"}}
        )
    store = SQLiteStore(stack.db)
    keys = store.keys()
    states = [store.load(k) or {} for k in keys]
    store.close()
    pooling = sorted(PermutationPlanner.from_dict(s["adaptive"]).pooling for s in states)
    assert pooling == ["gaussian", "mean"]


# -- errors --------------------------------------------------------------------------------

SIX_OPTIONS = "Which is largest?\nA. 1\nB. 2\nC. 3\nD. 4\nE. 5\nF. 6\nAnswer:"


@pytest.mark.parametrize(
    ("payload", "status", "param"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (json.dumps({"model": "m"}).encode(), 400, "messages"),
        (json.dumps({"messages": user("x")}).encode(), 400, "model"),
        (json.dumps({"model": "m", "messages": user("x"), "guard": "mcq"}).encode(), 400, "guard"),
        (
            json.dumps({"model": "m", "messages": user("x"), "guard": {"tsk": "mcq"}}).encode(),
            400,
            "guard.tsk",
        ),
        (
            json.dumps({"model": "m", "messages": user("x"), "guard": {"task": "mcq"}}).encode(),
            400,
            "guard.options",
        ),
        (
            json.dumps(
                {"model": "m", "messages": user(QUESTION), "guard": {"calibration": "batch"}}
            ).encode(),
            400,
            "guard.calibration",
        ),
        (  # full-permutation averaging on six options: 720 calls, not offered (planner error)
            json.dumps(
                {"model": "m", "messages": user(SIX_OPTIONS), "guard": {"calibration": "full"}}
            ).encode(),
            400,
            "guard.calibration",
        ),
        (
            json.dumps(
                {
                    "model": "m",
                    "messages": user(QUESTION),
                    "guard": {"task": "mcq", "options": ["x", "y"]},
                }
            ).encode(),
            400,
            "guard.options",
        ),
    ],
)
def test_bad_requests_get_openai_errors(
    stack: Stack, payload: bytes, status: int, param: str | None
) -> None:
    r = httpx.post(
        f"{stack.url}/v1/chat/completions",
        content=payload,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert r.headers["x-request-id"]


def test_openai_client_raises_typed_errors(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        stack.client.chat.completions.create(model="m", messages=[])
    assert exc.value.body["param"] == "messages"  # type: ignore[index]


def test_unknown_path_and_method(stack: Stack) -> None:
    r = httpx.get(f"{stack.url}/nope")  # not under /v1: calguard's own 404
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"
    r = httpx.delete(f"{stack.url}/healthz")
    assert r.status_code == 405
    assert "error" in r.json()


def test_other_v1_paths_pass_through_as_the_upstream_answers(stack: Stack) -> None:
    r = httpx.get(f"{stack.url}/v1/nope?x=1")  # the fake has no such path: its own 404
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}
    r = httpx.get(f"{stack.url}/v1/chat/completions")  # stored completions: the upstream's word
    assert r.status_code == 405


def test_a_route_budget_below_the_refresh_says_it_is_the_routes(stack: Stack) -> None:
    """Before, the 400 read as if the request had asked for too small a budget."""
    with pytest.raises(openai.BadRequestError) as exc:
        stack.client.chat.completions.create(
            model="lean", messages=user(QUESTION), extra_body={"guard": {"calibration": "adaptive"}}
        )
    assert exc.value.param == "guard.calibration"
    assert "the route of model 'lean' sets budget 1.03" in exc.value.message
    assert "a setting of this calguard, not of the request" in exc.value.message


def test_body_over_the_limit_is_413(stack: Stack) -> None:
    limit = Settings.model_fields["max_body_bytes"].default  # the default's
    big = json.dumps({"model": "m", "messages": user("x" * limit)}).encode()
    r = httpx.post(f"{stack.url}/v1/chat/completions", content=big)
    assert r.status_code == 413
    assert r.json()["error"]["message"].startswith("request body")


def test_upstream_5xx_is_retried_then_passed_back_as_it_was(stack: Stack) -> None:
    stack.state.faults[:] = [(500, {})] * 3
    with pytest.raises(openai.APIStatusError) as exc:
        stack.client.chat.completions.create(model="m", messages=user("hi"))
    assert exc.value.status_code == 500
    assert exc.value.body["message"] == "injected 500"  # type: ignore[index]
    assert not stack.state.faults  # all three attempts were made


def test_upstream_429_with_retry_after_is_retried(stack: Stack) -> None:
    stack.state.faults[:] = [(429, {"retry-after": "0"}), (503, {})]
    r = stack.client.chat.completions.create(model="m", messages=user("hi"))
    assert r.choices[0].message.content == "echo: hi"


def test_upstream_4xx_is_passed_back(stack: Stack) -> None:
    stack.state.faults[:] = [(400, {})]
    with pytest.raises(openai.BadRequestError) as exc:
        stack.client.chat.completions.create(model="m", messages=user("hi"))
    assert "injected 400" in str(exc.value)


def test_unreachable_upstream_is_502(tmp_path: Path) -> None:
    settings = Settings(
        upstream=f"http://127.0.0.1:{free_port()}/v1",
        store=f"sqlite:///{tmp_path / 'x.db'}",
        max_attempts=2,
        retry_max_wait_s=0.01,
    )
    with serve_in_thread(create_app(settings)) as proxy:
        r = httpx.post(f"{proxy}/v1/chat/completions", json={"model": "m", "messages": user("x")})
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_unreachable"


# -- the other endpoints -------------------------------------------------------------------


def test_models_health_and_metrics(stack: Stack) -> None:
    ids = [m.id for m in stack.client.models.list().data]
    assert ids == ["sim-biased-llm", "alias", "lean", "near-random"]
    assert httpx.get(f"{stack.url}/healthz").json()["status"] == "ok"
    stack.client.chat.completions.create(
        model="m", messages=user(QUESTION), extra_body={"guard": {"calibration": "cyclic"}}
    )
    text = httpx.get(f"{stack.url}/metrics").text
    assert 'calguard_requests_total{task="mcq"} 1' in text
    assert "calguard_upstream_calls_total 5.0" in text  # the model list, then 4 orders


def test_legacy_completions_take_logprobs_as_a_count(stack: Stack) -> None:
    # /v1/completions' logprobs is an integer (how many), unlike chat's boolean switch.
    r = httpx.post(
        f"{stack.url}/v1/completions", json={"model": "m", "prompt": "hi", "logprobs": 3}
    )
    assert r.status_code == 200
    assert stack.state.requests[-1]["logprobs"] == 3
    r = httpx.post(
        f"{stack.url}/v1/chat/completions",
        json={"model": "m", "messages": user("hi"), "logprobs": 3},
    )
    assert r.status_code == 400
