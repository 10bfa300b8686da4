"""Findings of the guard review (policies and the flag log), each where it shows: on the wire
through a real calguard, or through a wrapped client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.store import SQLiteStore
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread
from tests.e2e.test_policies_proxy import scripted

UPSTREAM_KEY = "sk-upstream-REVIEW-0123456789abcdef"
MAIL, TICKET = "bob@example.com", "code-1234"
REGEX = {"type": "regex", "params": {"patterns": [r"\bcode-\d{4}\b"]}, "action": "redact"}
PII = {"type": "pii", "action": "redact"}
ROUTES: dict[str, list[dict[str, Any]]] = {
    # two redactions of the answer, the first one's verdict made before the second's
    "answer": [{**PII, "on": "response"}, {**REGEX, "on": "response"}],
    # a redaction of the prompt on a route that leaves PII to pass
    "prompt": [{**REGEX, "on": "prompt"}],
}


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, SQLiteStore]]:
    state = FakeUpstreamState(SimulatedResponder(), text_responder=scripted)
    with serve_in_thread(create_fake_upstream(state)) as up:
        settings = Settings(
            upstream=f"{up}/v1",
            upstream_key=UPSTREAM_KEY,
            store=f"sqlite:///{tmp_path / 'r.db'}",
            routes={n: RouteConfig(upstream_model="sim", policies=p) for n, p in ROUTES.items()},
            max_attempts=1,
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url, SQLiteStore(tmp_path / "r.db")


def _say(url: str, route: str, text: str, **body: Any) -> httpx.Response:
    messages = [{"role": "user", "content": f"say: {text}"}]
    return httpx.post(
        f"{url}/v1/chat/completions", json={"model": route, "messages": messages, **body}
    )


def test_a_match_a_later_policy_redacts_is_not_in_an_earlier_verdict(
    proxy: tuple[str, SQLiteStore],
) -> None:
    """Redactions chain, so the first redacting verdict's text still held what the second one
    took out, and every verdict goes to the client in guard.flags: the ticket the regex
    redacted from the answer came back there (and into the flag log)."""
    url, store = proxy
    r = _say(url, "answer", f"mail {MAIL} {TICKET}")
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "mail [REDACTED] [REDACTED]"
    assert [f["policy"] for f in r.json()["guard"]["flags"]] == ["pii", "regex"]
    assert TICKET not in r.text
    (rec,) = store.flags()  # its request is the client's prompt, which no policy here reads
    assert TICKET not in json.dumps([rec["verdicts"], rec["response"]])


def test_a_stream_blocked_for_a_redaction_keeps_no_match_in_its_verdicts(
    proxy: tuple[str, SQLiteStore],
) -> None:
    """The same on a stream, where a redaction blocks: the verdicts read at its end."""
    url, store = proxy
    r = _say(url, "answer", f"{MAIL},{TICKET}", stream=True)
    assert "policy_violation" in r.text
    for secret in (TICKET, MAIL):
        assert secret not in r.text
    (rec,) = store.flags()
    stored = json.dumps([rec["verdicts"], rec["response"]])
    assert "[REDACTED]" in stored
    for secret in (TICKET, MAIL):
        assert secret not in stored


def test_the_flag_record_keeps_no_raw_pii_nor_key_in_a_verdict(
    proxy: tuple[str, SQLiteStore],
) -> None:
    """The record's request and response go through the secrets and PII redactions and the key
    scrubber whatever the route's policies do; a redacting verdict's text (the whole prompt
    with the regex's match taken out) did not, so the raw address, and calguard's key, were
    stored in the flag log."""
    url, store = proxy
    r = _say(url, "prompt", f"mail {MAIL} {TICKET} {UPSTREAM_KEY}")
    assert r.status_code == 200
    (rec,) = store.flags()
    assert [v["policy"] for v in rec["verdicts"]] == ["regex"]
    for secret in (MAIL, TICKET, UPSTREAM_KEY):
        assert secret not in json.dumps(rec)
