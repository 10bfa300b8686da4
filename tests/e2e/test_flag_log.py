"""The flag log: API keys, the CLI, and nothing acknowledged is lost — under load and SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from guard.cli import flags as flags_cli
from guard.cli import main
from guard.config import RouteConfig, Settings
from guard.errors import StoreUnavailableError
from guard.server import create_app
from guard.store import SQLiteStore as Store
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread
from tests.e2e.serve_process import calguard_serve

FLAGGED = [{"type": "max_length", "params": {"max_chars": 5}, "action": "flag", "on": "response"}]


@pytest.fixture
def upstream() -> Iterator[str]:
    with serve_in_thread(create_fake_upstream(FakeUpstreamState(SimulatedResponder()))) as up:
        yield f"{up}/v1"


def _settings(upstream: str, db: Path, **kw: object) -> Settings:
    return Settings(
        upstream=upstream,
        store=f"sqlite:///{db}",
        default_route=RouteConfig(policies=FLAGGED),
        **kw,
    )  # type: ignore[arg-type]


def test_api_keys_are_required_when_configured(upstream: str, tmp_path: Path) -> None:
    with serve_in_thread(
        create_app(_settings(upstream, tmp_path / "a.db", api_keys=["k1"]))
    ) as url:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        r = httpx.post(f"{url}/v1/chat/completions", json=body)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        with (
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0) as c,
            pytest.raises(openai.AuthenticationError),
        ):
            c.chat.completions.create(model="m", messages=body["messages"])  # type: ignore[arg-type]
        with openai.OpenAI(base_url=f"{url}/v1", api_key="k1", max_retries=0) as c:
            assert c.chat.completions.create(model="m", messages=body["messages"])  # type: ignore[arg-type]
        assert httpx.get(f"{url}/healthz").status_code == 200  # health stays open


def test_cli_lists_shows_and_exports(
    upstream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    with serve_in_thread(create_app(_settings(upstream, db))) as url:
        for text in ("first one", "second one", "ok"):
            httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": text}]},
            )
    store = f"sqlite:///{db}"
    assert main(["flags", "list", "--store", store]) == 0
    out = capsys.readouterr()
    assert out.out.count("max_length") == 3  # every echo is longer than 5 characters
    assert "3 record(s)" in out.err
    assert main(["flags", "show", "1", "--store", store]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["request"]["messages"][0]["content"] == "first one"
    assert (
        main(
            [
                "flags",
                "export",
                "--format",
                "jsonl",
                "--policy",
                "max_length",
                "--since",
                "1h",
                "--store",
                store,
            ]
        )
        == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["flags", "export", "--format", "csv", "--policy", "pii", "--store", store]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "id,time,request_id,route,model,key,action,policies,reasons"
    ]
    assert main(["flags", "show", "99", "--store", store]) == 1


async def _fire(url: str, n: int, concurrency: int) -> list[str]:
    """``n`` flagged requests, ``concurrency`` at a time; the ids of those answered 200."""
    ok: list[str] = []
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def one(i: int) -> None:
            async with sem:
                rid = f"load-{i}"
                try:
                    r = await client.post(
                        f"{url}/v1/chat/completions",
                        headers={"x-request-id": rid},
                        json={"model": "m", "messages": [{"role": "user", "content": f"q {i}"}]},
                    )
                except httpx.HTTPError:
                    return  # the proxy died under us: this one was never acknowledged
                if r.status_code == 200 and r.headers.get("x-calguard-flags") == "max_length":
                    ok.append(rid)

        await asyncio.gather(*(one(i) for i in range(n)))
    return ok


def test_a_thousand_flags_at_concurrency_50_make_a_thousand_records(
    upstream: str, tmp_path: Path
) -> None:
    db = tmp_path / "load.db"
    with serve_in_thread(create_app(_settings(upstream, db))) as url:
        acknowledged = asyncio.run(_fire(url, 1000, 50))
    assert len(acknowledged) == 1000
    store = Store(db)
    assert store.count_flags() == 1000
    assert {f["request_id"] for f in store.flags()} == set(acknowledged)


def test_sigkill_under_load_loses_no_acknowledged_record(upstream: str, tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    port = free_port()
    config = tmp_path / "c.yaml"
    config.write_text(
        json.dumps(
            {  # JSON is YAML
                "upstream": upstream,
                "port": port,
                "store": f"sqlite:///{db}",
                "default_route": {"policies": FLAGGED},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALGUARD_")}
    with calguard_serve(config, port, env) as (url, proc):

        async def load_then_kill() -> list[str]:
            task = asyncio.create_task(_fire(url, 2000, 50))
            for _ in range(300):  # kill once a few hundred records are in, at most 30 s
                await asyncio.sleep(0.1)
                if Store(db).count_flags() >= 300:
                    break
            proc.send_signal(signal.SIGKILL)
            return await task

        acknowledged = asyncio.run(load_then_kill())
    assert 0 < len(acknowledged) < 2000  # it really died mid-load
    recorded = {f["request_id"] for f in Store(db).flags()}
    missing = set(acknowledged) - recorded
    assert not missing, f"{len(missing)} acknowledged requests have no record"


def test_the_flag_log_is_followed_page_by_page_while_it_is_written(
    upstream: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader follows the log through ``GET /v1/guard/flags`` with ``after`` the last id it
    read, a page of 7 at a time, while 120 flagged requests are answered at concurrency 20:
    every record is read once, none twice, none skipped; ``has_more`` says when to stop. Before,
    the endpoint had no cursor: a page was always the oldest records (at most 10,000 of them),
    and ``since`` (a time taken before the record is written) skips or repeats records.
    ``calguard flags export --after`` reads the rest the same way."""
    db = tmp_path / "c.db"
    admin = {"authorization": "Bearer sk-admin"}
    with (
        serve_in_thread(create_app(_settings(upstream, db, admin_key="sk-admin"))) as url,
        ThreadPoolExecutor(1) as writer,
    ):
        load = writer.submit(asyncio.run, _fire(url, 120, 20))
        seen: list[int] = []
        after = 0
        for _ in range(100_000):  # bounded: the writer ends within its clients' timeouts
            written = load.done()  # before the page: then the page has every record
            page = httpx.get(
                f"{url}/v1/guard/flags", params={"after": after, "limit": 7}, headers=admin
            ).json()
            seen += [r["id"] for r in page["data"]]
            after = seen[-1] if seen else 0
            if written and not page["has_more"]:
                break
        acknowledged = load.result()
        for bad in (2**63, -1, "x"):  # not an id: an OpenAI-style 400, not a 500 or a 503
            r = httpx.get(f"{url}/v1/guard/flags", params={"after": bad}, headers=admin)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["param"] == "after"
    assert len(acknowledged) == 120
    assert len(seen) == len(set(seen)) == 120
    assert seen == sorted(seen)
    monkeypatch.setattr(flags_cli, "PAGE", 7)  # the export reads the store 7 records at a time
    assert main(["flags", "export", "--after", str(seen[59]), "--store", f"sqlite:///{db}"]) == 0
    exported = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
    assert exported == seen[60:]
    assert main(["flags", "list", "--limit", "10", "--store", f"sqlite:///{db}"]) == 0
    assert "10 record(s)" in capsys.readouterr().err


def test_a_page_of_large_records_is_sent_without_holding_them_all(
    upstream: str, tmp_path: Path
) -> None:
    """A flag record holds the request and the answer (up to ``max_body_bytes``, 64 MB, each):
    ``GET /v1/guard/flags`` (100 records by default) held a whole page in memory several times
    over (the rows, the records parsed, the JSON answer), so a page of large records could make
    the proxy serving traffic run out of memory: 80 MB of records took its peak from 180 to
    506 MB. Now the records are read a few at a time and streamed: the peak stays under the
    size of the page itself."""
    db = tmp_path / "c.db"
    store = Store(db)
    text = "word " * 100_000  # 0.5 MB
    n = 80
    for i in range(n):
        store.add_flag({"time": float(i), "request_id": f"r{i}", "route": "m", "model": "m",
                        "key": None, "action": "flag", "policies": ["max_length"],
                        "request": {"content": text}})  # fmt: skip
    store.close()
    page_bytes = n * len(text)
    admin = {"authorization": "Bearer sk-admin"}
    with serve_in_thread(create_app(_settings(upstream, db, admin_key="sk-admin"))) as url:
        tracemalloc.start()
        try:
            with (
                httpx.stream("GET", f"{url}/v1/guard/flags", headers=admin, timeout=120) as r,
                (tmp_path / "page.json").open("wb") as out,
            ):
                assert r.status_code == 200
                for chunk in r.iter_bytes():
                    out.write(chunk)  # not kept in memory: the peak is the server's
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    page = json.loads((tmp_path / "page.json").read_bytes())
    assert [f["request_id"] for f in page["data"]] == [f"r{i}" for i in range(n)]
    assert page["has_more"] is False
    assert peak < page_bytes, f"peak {peak / 1e6:.0f} MB for {page_bytes / 1e6:.0f} MB"


def test_a_store_failing_mid_page_cuts_the_answer_and_says_so_once(
    upstream: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The status and the first records went out: the JSON never looks whole (the connection
    closes before the end of the chunked body), and calguard logs one line that says why
    (before: uvicorn's 'Exception in ASGI application' traceback, RuntimeError 'Caught handled
    exception, but response already started', and no word of calguard's)."""
    db = tmp_path / "d.db"
    store = Store(db)
    for i in range(20):
        store.add_flag({"time": float(i), "request_id": f"r{i}", "route": "m", "model": "m",
                        "key": None, "action": "flag", "policies": ["max_length"]})  # fmt: skip
    store.close()
    read = Store.flags

    def failing_after_the_first(self: Store, **kw: Any) -> list[dict[str, Any]]:
        if kw.get("after"):
            raise StoreUnavailableError("the store went away")
        return read(self, **kw)

    monkeypatch.setattr(Store, "flags", failing_after_the_first)
    admin = {"authorization": "Bearer sk-admin"}
    with serve_in_thread(create_app(_settings(upstream, db, admin_key="sk-admin"))) as url:
        got: list[bytes] = []
        with httpx.stream("GET", f"{url}/v1/guard/flags", headers=admin) as r:
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                got.extend(r.iter_bytes())
    with pytest.raises(json.JSONDecodeError):
        json.loads(b"".join(got))
    said = [r.getMessage() for r in caplog.records if r.name == "calguard"]
    assert said == ["GET /v1/guard/flags cut after 8 records: the store went away"]
