"""A stream's flag record with the store down. The text of a stream on a flag-only route goes out
as it comes; its record is committed at the end. Before the spool, a store that was down then
ended the stream with a ``store_unavailable`` event in place of ``[DONE]`` (the SDK raised after
the client had the whole text) and the record was lost. Now the record waits in the spool, the
stream ends as the upstream's did, and the record reaches the flag log when the store is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

import guard
from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.downable_store import DownableStore
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

FLAGGED = [{"type": "max_length", "params": {"max_chars": 5}, "action": "flag", "on": "response"}]
ADMIN = {"authorization": "Bearer sk-admin"}
HELLO = [{"role": "user", "content": "hello there"}]  # its echo is over 5 characters: flagged


@pytest.fixture
def upstream() -> Iterator[str]:
    with serve_in_thread(create_fake_upstream(FakeUpstreamState(SimulatedResponder()))) as up:
        yield f"{up}/v1"


def settings(upstream: str, tmp_path: Path, spool: Path) -> Settings:
    return Settings(upstream=upstream, store=f"sqlite:///{tmp_path / 'c.db'}", admin_key="sk-admin",
                    spool_dir=str(spool), default_route=RouteConfig(policies=FLAGGED))  # type: ignore[arg-type]  # fmt: skip


def streamed_text(base: str) -> str:
    with openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0) as c:
        stream = c.chat.completions.create(model="m", messages=HELLO, stream=True)  # type: ignore[arg-type]
        return "".join(ev.choices[0].delta.content or "" for ev in stream if ev.choices)


def flag_log(base: str) -> list[dict[str, object]]:
    got = httpx.get(f"{base}/v1/guard/flags", headers=ADMIN, timeout=30)
    assert got.status_code == 200
    data: list[dict[str, object]] = got.json()["data"]
    return data


def test_a_streams_record_waits_in_the_spool_and_reaches_the_flag_log(
    upstream: str, tmp_path: Path
) -> None:
    store = DownableStore(tmp_path / "c.db")
    spool = tmp_path / "spool"
    try:
        with serve_in_thread(create_app(settings(upstream, tmp_path, spool), store=store)) as base:
            store.down = True
            # The whole text, and the stream ends as the upstream's did: the SDK raises nothing.
            assert streamed_text(base) == "echo: hello there"
            assert store.count_flags() == 0
            assert len(list(spool.glob("*.jsonl"))) == 1  # kept on disk, fsynced
            assert httpx.get(f"{base}/readyz").json()["checks"]["store"]["spooled"] == 1
            # A whole answer still needs its record before it goes out: a 503, as before.
            c = openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
            with c, pytest.raises(openai.APIStatusError) as info:
                c.chat.completions.create(model="m", messages=HELLO)  # type: ignore[arg-type]
            assert info.value.status_code == 503
            store.down = False
            deadline = time.monotonic() + 30
            while "spooled" in httpx.get(f"{base}/readyz").json()["checks"]["store"]:
                assert time.monotonic() < deadline, "the spooled record never went in"
                time.sleep(0.05)
            (record,) = flag_log(base)
        assert record["response"] == {"streamed_text": {"0": "echo: hello there"}}
        assert record["policies"] == ["max_length"]
        assert list(spool.glob("*.jsonl")) == []
    finally:
        store.close()


def test_a_spool_that_cannot_be_written_says_the_record_was_not_made(
    upstream: str, tmp_path: Path
) -> None:
    """Nowhere to keep it: the stream ends in the store's error event, as it did before the
    spool, so the client knows the record was not made."""
    store = DownableStore(tmp_path / "c.db")
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    try:
        app = create_app(settings(upstream, tmp_path, not_a_folder), store=store)
        with serve_in_thread(app) as base:
            store.down = True
            with pytest.raises(openai.APIError) as info:
                streamed_text(base)
        assert info.value.code == "store_unavailable"
    finally:
        store.close()


def test_a_stream_blocked_while_the_store_is_down_is_blocked_and_its_record_kept(
    upstream: str, tmp_path: Path
) -> None:
    store = DownableStore(tmp_path / "c.db")
    blocking = [{"type": "max_length", "params": {"max_chars": 5}, "action": "block",
                 "on": "response"}]  # fmt: skip
    s = settings(upstream, tmp_path, tmp_path / "spool")
    s.default_route = RouteConfig(policies=blocking)  # type: ignore[arg-type]
    try:
        with serve_in_thread(create_app(s, store=store)) as base:
            store.down = True
            with pytest.raises(openai.APIError) as info:
                streamed_text(base)
            assert info.value.type == "policy_violation"  # the block, not the store's 503
            assert "hello there" not in str(info.value.body)
            store.down = False
            deadline = time.monotonic() + 30
            while not (log := flag_log(base)):
                assert time.monotonic() < deadline, "the spooled record never went in"
                time.sleep(0.05)
        (record,) = log
        assert record["action"] == "block"
    finally:
        store.close()


def test_the_wrapped_client_keeps_a_streams_record_beside_its_sqlite_file(
    upstream: str, tmp_path: Path
) -> None:
    """The in-process face takes the same path: a stream's record waits in ``c.db-spool``."""
    store = DownableStore(tmp_path / "c.db")
    inner = openai.OpenAI(base_url=upstream, api_key="x", max_retries=0)
    wrapped = guard.wrap(inner, store=store, route=RouteConfig(policies=FLAGGED))  # type: ignore[arg-type]
    try:
        store.down = True
        stream = wrapped.chat.completions.create(model="m", messages=HELLO, stream=True)  # type: ignore[arg-type]
        assert "".join(ev.choices[0].delta.content or "" for ev in stream if ev.choices) == (
            "echo: hello there"
        )
        assert len(list((tmp_path / "c.db-spool").glob("*.jsonl"))) == 1
        store.down = False
        deadline = time.monotonic() + 30
        while store.count_flags() == 0:
            assert time.monotonic() < deadline, "the spooled record never went in"
            time.sleep(0.05)
    finally:
        wrapped.close()
