"""``calguard report`` on the store a running proxy wrote, on SQLite and on PostgreSQL: PriDe
questions of two templates (two calibration keys), some flagged, some blocked, and pass-through
requests, sent through the real ``openai`` client. The report's history of each key has a point
per question, each the prior the next question divided out; its traffic table counts the
requests and upstream calls each key got and exactly the flags the proxy acknowledged."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from guard.cli import main
from guard.config import RouteConfig, Settings
from guard.evaluation.report_store import NO_KEY, read_store
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

POLICIES = [
    {"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block", "on": "prompt"},
    {"type": "denylist", "params": {"words": ["suspicious"]}, "action": "flag", "on": "prompt"},
]
ANIMALS = ["cat", "dog", "owl", "fox", "elk", "yak", "emu", "eel", "ant", "bee"]
PRIDE = {"guard": {"calibration": "pride"}}


def question(i: int, n: int, word: str = "") -> list[dict[str, str]]:
    """Question ``i`` of the ``n``-option template (one calibration key per ``n``)."""
    options = "\n".join(f"{'ABCD'[k]}. {ANIMALS[(i + k) % len(ANIMALS)]}" for k in range(n))
    text = f"Question {i}{word}: which is a pet?\nOptions:\n{options}\nAnswer:"
    return [{"role": "user", "content": text}]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'proxy.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def proxy(store_url: str) -> Iterator[openai.OpenAI]:
    with serve_in_thread(create_fake_upstream(FakeUpstreamState(SimulatedResponder()))) as up:
        settings = Settings(
            upstream=f"{up}/v1", store=store_url, default_route=RouteConfig(policies=POLICIES)
        )
        with (
            serve_in_thread(create_app(settings)) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="t", max_retries=0, timeout=60) as c,
        ):
            yield c


def send(client: openai.OpenAI, messages: list[dict[str, str]], extra: Any) -> dict[str, Any]:
    """One request; what the proxy acknowledged: its flags header, its guard evidence, or the
    policy that blocked it."""
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=messages, extra_body=extra
        )  # type: ignore[call-overload]
    except openai.BadRequestError as exc:
        return {"blocked": (exc.type, exc.code)}
    guard = (raw.parse().model_extra or {}).get("guard") or {}
    return {"flags": raw.headers.get("x-calguard-flags"), "key": guard.get("key"), "guard": guard}


def test_the_report_shows_what_the_proxy_was_sent(
    proxy: openai.OpenAI, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[dict[str, Any]] = []
    for i in range(30):  # 4 options, one in five flagged
        sent.append(send(proxy, question(i, 4, " suspicious" if i % 5 == 4 else ""), PRIDE))
    for i in range(12):  # 3 options: another key
        sent.append(send(proxy, question(i, 3), PRIDE))
    for i in range(3):  # blocked before any calibration
        sent.append(send(proxy, question(i, 4, " forbidden"), PRIDE))
    for _ in range(2):  # pass-through, flagged
        sent.append(send(proxy, [{"role": "user", "content": "a suspicious hello"}], None))

    keys = sorted({s["key"] for s in sent if s.get("key")})
    assert len(keys) == 2
    by_key = {k: [s["guard"] for s in sent if s.get("key") == k] for k in keys}
    flagged = Counter(s["key"] for s in sent if s.get("flags"))
    assert flagged[None] == 2  # the pass-through requests
    assert sum(flagged.values()) == 8  # and 6 questions
    assert [s["blocked"] for s in sent if "blocked" in s] == [("policy_violation", "denylist")] * 3

    found = read_store(store_url)
    rows = {r.key: r for r in found.traffic}
    assert set(rows) == {*keys, None}
    for key in keys:
        assert rows[key].methods == ("pride",)
        assert rows[key].requests == len(by_key[key])
        assert rows[key].calls == sum(g["upstream_calls"] for g in by_key[key])
        assert (rows[key].flagged, rows[key].blocked) == (flagged[key], 0)
    assert (rows[None].requests, rows[None].flagged, rows[None].blocked) == (None, 2, 3)

    priors = {p.key: p for p in found.priors}
    assert set(priors) == set(keys)
    checked = 0
    for key, guards in by_key.items():
        history = dict(priors[key].history)
        assert sorted(history) == list(range(1, len(guards) + 1))  # a point per question
        for i, g in enumerate(guards[1:], start=1):
            if g["role"] == "single":  # divided out the prior the store held after i questions
                assert g["prior"] == pytest.approx(list(history[i]), abs=2e-6)
                checked += 1
        assert len(set(history.values())) > 1  # it moved
    assert checked >= 30  # the other questions are the warm-ups and a refresh

    out = tmp_path / "report"
    assert main(["report", "--store", store_url, "--out-dir", str(out)]) == 0
    table = capsys.readouterr().out
    for key in keys:
        line = next(x for x in table.splitlines() if x.startswith(key))
        assert line.split()[1:] == [
            "pride", str(rows[key].requests), str(rows[key].calls),
            f"{rows[key].calls / len(by_key[key]):.2f}", str(flagged[key]), "0",
        ]  # fmt: skip
    assert re.search(rf"^{re.escape(NO_KEY)}\s+-\s+-\s+-\s+-\s+2\s+3$", table, re.M)
    assert sorted(p.name for p in out.glob("*.png")) == ["store_history.png", "store_priors.png"]
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 2
    assert "(no calibration)" in html
