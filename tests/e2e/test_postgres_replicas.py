"""Two proxies on one PostgreSQL database, through the real ``openai`` client: calibrated PriDe
questions sent to both are each counted once in the shared planner; the database down is a 503
for what needs it while pass-through flows; back, calguard recovers without a restart. Each test
gets a fresh database and skips, saying why, when PostgreSQL is not reachable."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.store import open_store
from guard.store.postgres import PostgresStore
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread
from guard.testing.tcp_proxy import TcpProxy

PRIDE = {"guard": {"calibration": "pride"}}
FLAGGED = [{"type": "max_length", "params": {"max_chars": 12}, "action": "flag", "on": "response"}]
ANIMALS = ["cat", "dog", "owl", "fox", "elk", "yak", "emu", "eel", "ant", "bee"]


def question(i: int) -> list[dict[str, str]]:
    """Questions of one template (one calibration key), each different."""
    a, b, c, d = (ANIMALS[(i + k) % len(ANIMALS)] for k in range(4))
    text = f"Question {i}: which is a pet?\nOptions:\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:"
    return [{"role": "user", "content": text}]


@pytest.fixture
def upstream() -> Iterator[tuple[str, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as url:
        yield f"{url}/v1", state


def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0, timeout=60)


def test_two_replicas_share_the_planner_and_the_flag_log(
    upstream: tuple[str, FakeUpstreamState], pg_url: str
) -> None:
    url, _ = upstream
    per_replica = 15
    settings = Settings(upstream=url, store=pg_url)
    errors: list[BaseException] = []
    answered: list[str] = []
    with (
        serve_in_thread(create_app(settings)) as one,
        serve_in_thread(create_app(settings)) as two,
    ):
        start = threading.Barrier(2)

        def ask(base: str, offset: int) -> None:
            try:
                with client(base) as c:
                    start.wait(30)
                    for i in range(per_replica):
                        r = c.chat.completions.create(
                            model="m", messages=question(offset + i), extra_body=PRIDE
                        )  # type: ignore[call-overload]
                        answered.append(r.model_extra["guard"]["key"])
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=ask, args=(base, k * per_replica))
            for k, base in enumerate((one, two))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert errors == []
    assert len(answered) == 2 * per_replica
    assert len(set(answered)) == 1  # one template, one calibration key
    store = open_store(pg_url)
    try:
        assert store.keys() == [answered[0]]
        state = store.load(answered[0])
        assert state is not None
        # Every question sent, to either replica, was adopted exactly once.
        assert state["pride"]["started"] == 2 * per_replica
    finally:
        store.close()


def test_the_database_unreachable_is_a_503_and_pass_through_still_flows(
    upstream: tuple[str, FakeUpstreamState],
) -> None:
    url, _ = upstream
    down = PostgresStore(f"postgresql://postgres@127.0.0.1:{free_port()}/db?timeout_s=0.5",
                         migrate=False)  # fmt: skip
    settings = Settings(upstream=url, store="postgresql://unused/db", ready_timeout_s=5)
    try:
        with serve_in_thread(create_app(settings, store=down)) as base, client(base) as c:
            with pytest.raises(openai.APIStatusError) as info:
                c.chat.completions.create(model="m", messages=question(0), extra_body=PRIDE)
            assert info.value.status_code == 503
            body: Any = info.value.body
            assert body["code"] == "store_unavailable"
            assert "unavailable" in body["message"]
            assert info.value.response.headers["retry-after"] == "1"
            ok = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            assert ok.choices[0].message.content == "echo: hi"  # no store needed: it flows
            ready = httpx.get(f"{base}/readyz", timeout=30)
            assert ready.status_code == 503
            assert "store:" in ready.json()["error"]["message"]
            assert ready.json()["checks"]["upstream"]["ok"] is True
    finally:
        down.close()


def test_a_flagged_reply_is_withheld_while_down_and_calguard_recovers(
    upstream: tuple[str, FakeUpstreamState], pg_url: str, tmp_path: Path
) -> None:
    """A flag record cannot be committed: the reply is a 503, not sent unrecorded; a stream,
    whose text goes out before its record, keeps the record in the spool. Back: the same
    replica serves and records again, without a restart, and the spooled record goes in."""
    url, _ = upstream
    parts = urlsplit(pg_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    via = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    settings = Settings(
        upstream=url,
        store=f"{via}?timeout_s=1",
        spool_dir=str(tmp_path / "spool"),
        default_route=RouteConfig(policies=FLAGGED),
    )  # type: ignore[arg-type]
    long_hi = [{"role": "user", "content": "hello there"}]  # its echo is over 12 characters
    try:
        with serve_in_thread(create_app(settings)) as base, client(base) as c:
            assert c.chat.completions.create(model="m", messages=long_hi).choices
            proxy.stop()
            with pytest.raises(openai.APIStatusError) as info:
                c.chat.completions.create(model="m", messages=long_hi)
            assert info.value.status_code == 503
            streamed = httpx.post(
                f"{base}/v1/chat/completions",
                json={"model": "m", "messages": long_hi, "stream": True},
                timeout=30,
            )
            # Flag-only policies hold nothing back (none can end the stream): the text goes
            # out, the record waits in the spool, and the stream ends as the upstream's did.
            assert streamed.status_code == 200
            events = [e for e in streamed.text.split("\n\n") if e.strip()]
            assert len(events) > 2
            assert all('"delta"' in e for e in events[:-1])
            assert events[-1] == "data: [DONE]"
            assert len(list((tmp_path / "spool").glob("*.jsonl"))) == 1
            short = c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}]
            )
            assert short.choices[0].message.content == "echo: x"  # nothing to flag: it flows
            assert httpx.get(f"{base}/readyz", timeout=30).status_code == 503
            proxy.start()
            deadline = time.monotonic() + 60
            while httpx.get(f"{base}/readyz", timeout=30).status_code != 200:
                assert time.monotonic() < deadline, "calguard did not recover within 60 s"
                time.sleep(0.1)
            assert c.chat.completions.create(model="m", messages=long_hi).choices
            while list((tmp_path / "spool").glob("*.jsonl")):  # moved in every 2 s
                assert time.monotonic() < deadline + 30, "the spooled record never went in"
                time.sleep(0.1)
    finally:
        proxy.stop()
    store = open_store(pg_url)
    try:
        # the first, the stream's from the spool and the last; the refused one is not there
        assert store.count_flags() == 3
        # the spooled one takes its id when it goes in (before or after the last); its time is
        # when it was made, before the last one's
        records = store.flags()
        (spooled,) = [f for f in records if "streamed_text" in f["response"]]
        assert spooled["time"] < max(f["time"] for f in records)
    finally:
        store.close()
