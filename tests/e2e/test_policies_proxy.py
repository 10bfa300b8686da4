"""Every built-in policy through the running proxy with the openai client: flag, block, redact,
the x-calguard-flags header, the flag record, and streams that fail closed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.store import SQLiteStore as Store
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"
JUDGE = "Which response answers better?\nResponse A: {}\nResponse B: {}\nAnswer A or B."


def scripted(text: str) -> dict[str, float] | None:
    """'say: X' makes the model answer exactly X; a judge prefers the first position."""
    if text.startswith("say: "):
        return {text[5:]: 1.0}
    if text.startswith("Which response"):
        return {"A": 0.8, "B": 0.2}
    return None


ROUTES: dict[str, list[dict[str, Any]]] = {
    "pii": [{"type": "pii", "action": "redact", "on": "response"}],
    "secrets": [{"type": "secrets", "action": "block", "on": "prompt"}],
    "denylist": [{"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"}],
    "regex": [{"type": "regex", "params": {"patterns": [r"\bcode-\d{4}\b"]}, "action": "redact"}],
    "json_schema": [
        {
            "type": "json_schema",
            "on": "response",
            "action": "flag",
            "params": {"schema": {"type": "object", "required": ["a"]}},
        }
    ],
    "refusal": [{"type": "refusal", "action": "flag", "on": "response"}],
    "max_length": [
        {"type": "max_length", "params": {"max_chars": 20}, "action": "flag", "on": "response"}
    ],
    "low_confidence": [
        {
            "type": "low_confidence",
            "params": {"threshold": 0.99},
            "action": "flag",
            "on": "response",
        }
    ],
    "abstain": [
        {
            "type": "low_confidence",
            "params": {"threshold": 0.99, "abstain": True},
            "action": "flag",
            "on": "response",
        }
    ],
    "order_instability": [{"type": "order_instability", "action": "flag", "on": "response"}],
    "prior_skew": [
        {"type": "prior_skew", "params": {"max_kl": 0.01}, "action": "flag", "on": "response"}
    ],
    "stream_block": [
        {
            "type": "denylist",
            "params": {"words": ["forbidden"]},
            "action": "block",
            "on": "response",
        }
    ],
}


class Proxy:
    def __init__(self, url: str, db: Path, state: FakeUpstreamState) -> None:
        self.url = url
        self.store = Store(db)
        self.state = state
        self.client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-client", max_retries=0)

    def say(self, route: str, text: str, **kw: Any) -> Any:
        return self.client.chat.completions.create(
            model=route, messages=[{"role": "user", "content": f"say: {text}"}], **kw
        )


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    state = FakeUpstreamState(SimulatedResponder(), text_responder=scripted)
    with serve_in_thread(create_fake_upstream(state)) as up:
        routes = {
            name: RouteConfig(upstream_model="sim", policies=p, warmup=2)
            for name, p in ROUTES.items()
        }
        settings = Settings(
            upstream=f"{up}/v1",
            upstream_key="sk-upstream-SECRET-123456789012",
            store=f"sqlite:///{tmp_path / 'p.db'}",
            routes=routes,
            admin_key="admin-key",
            stream_holdback=64,
        )
        with serve_in_thread(create_app(settings)) as url:
            p = Proxy(url, tmp_path / "p.db", state)
            yield p
            p.client.close()


def guard_of(r: Any) -> dict[str, Any]:
    return dict((r.model_extra or {}).get("guard") or {})


def test_pii_is_redacted_and_logged(proxy: Proxy) -> None:
    raw = proxy.client.chat.completions.with_raw_response.create(
        model="pii", messages=[{"role": "user", "content": "say: mail bob@example.com now"}]
    )
    r = raw.parse()
    assert r.choices[0].message.content == "mail [REDACTED] now"
    assert raw.headers["x-calguard-flags"] == "pii"
    assert [f["policy"] for f in guard_of(r)["flags"]] == ["pii"]
    (rec,) = proxy.store.flags()
    assert rec["action"] == "flag"
    assert "bob@example.com" not in str(rec["response"])


def test_a_secret_in_the_prompt_is_blocked_before_the_upstream(proxy: Proxy) -> None:
    n = len(proxy.state.requests)
    with pytest.raises(openai.BadRequestError) as exc:
        proxy.say("secrets", "my key is sk-proj-abcdefghijklmnopqrstuvwxyz123456")
    err = exc.value.body
    assert err["type"] == "policy_violation"  # type: ignore[index]
    assert err["code"] == "secrets"  # type: ignore[index]
    assert len(proxy.state.requests) == n  # never sent upstream
    (rec,) = proxy.store.flags(policy="secrets")
    assert rec["action"] == "block"
    assert "sk-proj-abcdefghijklmnop" not in str(rec)  # the record is redacted too


@pytest.mark.parametrize(
    ("route", "text", "policy"),
    [
        ("denylist", "this is forbidden", "denylist"),
    ],
)
def test_block_on_the_response(proxy: Proxy, route: str, text: str, policy: str) -> None:
    with pytest.raises(openai.BadRequestError, match=policy):
        proxy.say(route, text)
    assert proxy.store.flags(policy=policy)[0]["action"] == "block"


def test_regex_redacts_the_prompt_before_it_is_sent(proxy: Proxy) -> None:
    r = proxy.say("regex", "use code-1234 please")
    assert proxy.state.requests[-1]["messages"][-1]["content"] == "say: use [REDACTED] please"
    assert r.choices[0].message.content == "use [REDACTED] please"


@pytest.mark.parametrize(
    ("route", "text", "flagged"),
    [
        ("json_schema", '{"a": 1}', False),
        ("json_schema", '{"b": 1}', True),
        ("json_schema", "not json", True),
        ("refusal", "I'm sorry, but I can't help with that.", True),
        ("refusal", "Sure, here it is.", False),
        ("max_length", "short", False),
        ("max_length", "x" * 40, True),
    ],
)
def test_response_flags(proxy: Proxy, route: str, text: str, flagged: bool) -> None:
    r = proxy.say(route, text)
    assert r.choices[0].message.content == text  # a flag never changes the answer
    assert bool(guard_of(r).get("flags")) is flagged
    assert len(proxy.store.flags(policy=route)) == int(flagged)


def test_unflagged_pass_through_stays_byte_for_byte(proxy: Proxy) -> None:
    r = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        json={"model": "max_length", "messages": [{"role": "user", "content": "say: ok"}]},
    )
    assert r.content == proxy.state.last_body
    assert "x-calguard-flags" not in r.headers


def mcq(proxy: Proxy, route: str, calibration: str) -> Any:
    return proxy.client.chat.completions.create(
        model=route,
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"guard": {"calibration": calibration}},
    )


def test_low_confidence_flags_and_abstains(proxy: Proxy) -> None:
    r = mcq(proxy, "low_confidence", "cyclic")
    assert [f["policy"] for f in guard_of(r)["flags"]] == ["low_confidence"]
    assert r.choices[0].message.content in "ABCD"
    r = mcq(proxy, "abstain", "cyclic")
    assert r.choices[0].message.content == "I am not sure."


def test_order_instability_on_a_position_biased_judge(proxy: Proxy) -> None:
    r = proxy.client.chat.completions.create(
        model="order_instability",
        messages=[{"role": "user", "content": JUDGE.format("one", "two")}],
        extra_body={"guard": {"task": "judge", "candidates": ["one", "two"]}},
    )
    policies = {f["policy"] for f in guard_of(r)["flags"]}
    assert policies == {"order_instability", "order_consistency"}


def test_prior_skew_flags_a_skewed_learned_prior(proxy: Proxy) -> None:
    for _ in range(2):  # warm-up: the prior is learned
        mcq(proxy, "prior_skew", "pride")
    r = mcq(proxy, "prior_skew", "pride")
    assert "prior_skew" in {f["policy"] for f in guard_of(r)["flags"]}


def test_a_blocked_stream_never_delivers_the_blocked_text(proxy: Proxy) -> None:
    body = {
        "model": "stream_block",
        "stream": True,
        "messages": [{"role": "user", "content": "say: all fine so far, then forbidden"}],
    }
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", json=body) as r:
        wire = b"".join(r.iter_bytes()).decode()
    events = [json.loads(line[6:]) for line in wire.split("\n\n") if line.startswith("data: {")]
    delivered = "".join(
        c["delta"].get("content") or "" for e in events for c in e.get("choices", [])
    )
    # What reached the client is a prefix of the answer that stops well before the word.
    assert "all fine so far, then forbidden".startswith(delivered)
    assert "forb" not in delivered
    assert events[-1]["error"]["type"] == "policy_violation"
    assert proxy.store.flags(policy="denylist")[0]["action"] == "block"
    with pytest.raises(openai.APIError):
        list(proxy.say("stream_block", "a forbidden word", stream=True))


def test_a_clean_stream_is_delivered_whole(proxy: Proxy) -> None:
    chunks = proxy.say("stream_block", "nothing to see here, " * 10, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "nothing to see here, " * 10


def test_admin_endpoint_needs_the_admin_key(proxy: Proxy) -> None:
    proxy.say("max_length", "x" * 40)
    assert httpx.get(f"{proxy.url}/v1/guard/flags").status_code == 401
    r = httpx.get(
        f"{proxy.url}/v1/guard/flags",
        params={"policy": "max_length"},
        headers={"Authorization": "Bearer admin-key"},
    )
    assert r.status_code == 200
    (rec,) = r.json()["data"]
    assert rec["policies"] == ["max_length"]


def test_the_upstream_key_never_leaves(proxy: Proxy) -> None:
    proxy.say("max_length", "x" * 40)
    r = httpx.get(f"{proxy.url}/v1/guard/flags", headers={"Authorization": "Bearer admin-key"})
    assert "sk-upstream-SECRET" not in r.text
    assert "sk-upstream-SECRET" not in httpx.get(f"{proxy.url}/metrics").text
