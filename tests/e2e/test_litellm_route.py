"""A route with ``provider: litellm``: calls go through ``litellm.acompletion`` (here its
OpenAI provider, pointed at the fake upstream on 127.0.0.1), with the same calibration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread
from tests.e2e.raw_upstream import JSON, raw_upstream, response

QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[openai.OpenAI, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        route = RouteConfig(
            provider="litellm",
            upstream_model="openai/sim-biased-llm",
            api_base=f"{up}/v1",
            api_key="route-key",
        )
        settings = Settings(
            upstream=f"http://127.0.0.1:{free_port()}/v1",  # never used
            upstream_key="k",
            store=f"sqlite:///{tmp_path / 'l.db'}",
            routes={"via-litellm": route},
        )
        with (
            serve_in_thread(create_app(settings)) as proxy,
            openai.OpenAI(base_url=f"{proxy}/v1", api_key="t", max_retries=0) as c,
        ):
            yield c, state


def test_litellm_route_passes_through_and_calibrates(
    client: tuple[openai.OpenAI, FakeUpstreamState],
) -> None:
    c, state = client
    r = c.chat.completions.create(
        model="via-litellm", messages=[{"role": "user", "content": "hello"}]
    )
    assert r.choices[0].message.content == "echo: hello"
    assert state.requests[-1]["model"] == "sim-biased-llm"  # LiteLLM stripped its prefix
    r = c.chat.completions.create(
        model="via-litellm",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"guard": {"calibration": "cyclic"}},
    )
    g = (r.model_extra or {})["guard"]
    assert r.choices[0].message.content == g["answer"]
    assert g["upstream_calls"] == 4
    assert state.requests[-1]["logprobs"] is True


def test_litellm_routes_keep_their_own_base_and_key_and_never_get_the_upstream_key(
    tmp_path: Path,
) -> None:
    """Defect: two litellm routes shared the first one's api_base, and the OpenAI upstream key
    went to every LiteLLM provider."""
    one, two = FakeUpstreamState(SimulatedResponder()), FakeUpstreamState(SimulatedResponder())
    with (
        serve_in_thread(create_fake_upstream(one)) as a,
        serve_in_thread(create_fake_upstream(two)) as b,
    ):
        routes = {
            "first": RouteConfig(
                provider="litellm", upstream_model="openai/m", api_base=f"{a}/v1", api_key="ka"
            ),
            "second": RouteConfig(
                provider="litellm", upstream_model="openai/m", api_base=f"{b}/v1", api_key="kb"
            ),
            "keyless": RouteConfig(
                provider="litellm", upstream_model="openai/m", api_base=f"{b}/v1"
            ),
        }
        settings = Settings(
            upstream=f"{a}/v1",
            upstream_key="sk-upstream-secret",
            store=f"sqlite:///{tmp_path / 'l.db'}",
            routes=routes,
        )
        with (
            serve_in_thread(create_app(settings)) as proxy,
            openai.OpenAI(base_url=f"{proxy}/v1", api_key="t", max_retries=0) as c,
        ):
            for model in ("first", "second"):
                c.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
            with pytest.raises(openai.APIStatusError):  # no key of its own: LiteLLM refuses
                c.chat.completions.create(
                    model="keyless", messages=[{"role": "user", "content": "x"}]
                )
    assert [h["authorization"] for h in one.headers] == ["Bearer ka"]
    assert [h["authorization"] for h in two.headers] == ["Bearer kb"]


RATE_LIMITED = (
    b'{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,'
    b'"code":"rate_limit_exceeded"}}'
)
SERVER_ERROR = b'{"error":{"message":"boom","type":"server_error","param":null,"code":null}}'
BAD_REQUEST = (
    b'{"error":{"message":"Invalid value for temperature","type":"invalid_request_error",'
    b'"param":"temperature","code":"invalid_value"}}'
)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("status", "body", "sdk_error"),
    [
        (b"429 Too Many Requests", RATE_LIMITED, openai.RateLimitError),
        (b"500 Internal Server Error", SERVER_ERROR, openai.InternalServerError),
        (b"400 Bad Request", BAD_REQUEST, openai.BadRequestError),
    ],
)
def test_a_providers_error_keeps_its_status_and_retry_after_on_a_litellm_route(
    tmp_path: Path, stream: bool, status: bytes, body: bytes, sdk_error: type[Exception]
) -> None:
    """Defect: on a LiteLLM route a provider's 429 or 5xx was a 502 ``upstream_failed``
    (its Retry-After dropped: the client retried at once, not when it was told), and any error
    of a stream, a 400 too, was a 502 the client asked again for (three calls for a typo). As
    on the fast path, the client gets the provider's status, with when to retry."""
    with raw_upstream() as up:
        up.answers[b"/chat/completions"] = response(
            status, [JSON, (b"retry-after", b"0"), (b"retry-after-ms", b"5")], body
        )
        route = RouteConfig(
            provider="litellm", upstream_model="openai/m", api_base=f"{up.url}/v1", api_key="rk"
        )
        settings = Settings(store=f"sqlite:///{tmp_path / 'e.db'}", routes={"lm": route})
        with (
            serve_in_thread(create_app(settings)) as proxy,
            openai.OpenAI(base_url=f"{proxy}/v1", api_key="t", max_retries=2) as c,
        ):
            with pytest.raises(sdk_error) as caught:  # a stream's too, before its first chunk
                c.chat.completions.create(
                    model="lm", messages=[{"role": "user", "content": "hi"}], stream=stream
                )
            asked = len(up.got)
    err = caught.value
    assert isinstance(err, openai.APIStatusError)
    assert err.response.headers.get("retry-after-ms") == "5"
    if status.startswith(b"400"):
        assert asked == 1  # not asked again
        assert (err.code, err.param) == ("invalid_value", "temperature")
    else:
        assert asked == 3  # the client's own retries, each after the time it was told
