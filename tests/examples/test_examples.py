"""Every script of ``examples/`` runs: against a calguard proxy on 127.0.0.1 in front of the
simulated fake upstream, against the fake directly (``wrap``), with no network at all
(``@calibrated``), or on the ARC replay (``calguard eval``)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import runpy
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from guard.config import Settings, load_settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.nginx import render_config, run_nginx_config
from guard.testing.servers import free_port, serve_in_thread

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve_in_thread(create_fake_upstream(FakeUpstreamState(SimulatedResponder()))) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def proxy(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("examples") / "calguard.db"
    settings = load_settings(None, {"upstream": upstream, "store": f"sqlite:///{db}"})
    with serve_in_thread(create_app(settings)) as url:
        yield f"{url}/v1"


def run_example(name: str, capsys: pytest.CaptureFixture[str]) -> str:
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


@pytest.fixture(autouse=True)
def _store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALGUARD_STORE", f"sqlite:///{tmp_path / 'calguard.db'}")


def test_proxy_with_the_openai_sdk(
    proxy: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALGUARD_URL", proxy)
    out = run_example("proxy_openai_sdk.py", capsys)
    assert out.startswith("answer: ")
    assert "upstream calls:" in out


# litellm's own types trip a pydantic warning the first time they are built (not calguard's).
def test_proxy_with_the_litellm_sdk(
    proxy: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALGUARD_URL", proxy)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        out = run_example("proxy_litellm_sdk.py", capsys).strip()
    finally:  # LiteLLM keeps its OpenAI client (and its socket) for the process's life
        import litellm

        cache = litellm.in_memory_llm_clients_cache
        for cached in list(cache.cache_dict.values()):
            if callable(close := getattr(cached, "close", None)):
                with contextlib.suppress(Exception):  # an async client's close is a coroutine
                    if inspect.iscoroutine(result := close()):
                        result.close()
        cache.flush_cache()
    assert out in {f"answer: {x}" for x in "ABCD"}


def test_proxy_with_langchain(
    proxy: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALGUARD_URL", proxy)
    assert run_example("proxy_langchain.py", capsys).strip() in {f"answer: {x}" for x in "ABCD"}


def test_wrap_in_process(
    upstream: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPSTREAM_URL", upstream)
    out = run_example("wrap_in_process.py", capsys)
    assert out.startswith("answer: ")


def test_calibrated_function_undoes_a_first_position_bias(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The toy model is right only when the answer is shown first or second: averaging the
    # cyclic orders recovers it although the question shows it third.
    assert run_example("calibrated_function.py", capsys).strip() == "answer: C"


def test_the_policy_config_loads_and_builds_an_app(upstream: str) -> None:
    settings = load_settings(EXAMPLES / "policies.yaml", {"upstream": upstream})
    assert [p["type"] for p in settings.default_route.policies][:2] == ["secrets", "pii"]
    create_app(settings)


def eval_replay(
    data: Path, port: int | str, limit: int, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """examples/eval_replay.sh run on ``port``, its outputs under ``tmp_path``."""
    env = {
        **os.environ,
        "DATA": str(data),
        "PORT": str(port),
        "LIMIT": str(limit),
        "OUT": str(tmp_path / "arc.json"),
        "REPORT": str(tmp_path / "report"),
    }
    return subprocess.run(
        ["bash", str(EXAMPLES / "eval_replay.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_eval_on_the_replay(recorded: Callable[[str], Path], tmp_path: Path) -> None:
    done = eval_replay(recorded("").parent, free_port(), 20, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((tmp_path / "arc.json").read_text())["rows"]
    assert [r["calibration"] for r in rows] == ["none", "pride", "adaptive", "cyclic"]
    assert all(r["items"] == 20 for r in rows)
    assert (tmp_path / "report" / "report.html").exists()


def test_eval_replay_refuses_a_port_another_server_answers(
    recorded: Callable[[str], Path], upstream: str, tmp_path: Path
) -> None:
    # The README's own `calguard replay-upstream ... --port 8001 &` may still be running: the
    # script's replay then cannot bind, and the eval must not go to whatever answers there.
    port = upstream.removesuffix("/v1").rsplit(":", 1)[1]
    done = eval_replay(recorded("").parent, port, 5, tmp_path)
    assert done.returncode != 0
    assert f"port {port} is in use" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "arc.json").exists()
    assert not (tmp_path / "arc.jsonl").exists()


def behind_the_example_nginx(stack: ExitStack, settings: Settings, conf: str = "") -> str:
    """examples/nginx.conf as written (only its ports changed) in front of three replicas on
    ``settings``; its base URL."""
    text = conf or (EXAMPLES / "nginx.conf").read_text()
    for i in range(3):
        url = stack.enter_context(serve_in_thread(create_app(settings)))
        text = text.replace(f"127.0.0.1:800{i + 1}", url.removeprefix("http://"))
    port = free_port()
    text = text.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
    return stack.enter_context(run_nginx_config(text, port)).url


def test_the_nginx_conf_balances_three_replicas(
    nginx_bin: str, upstream: str, tmp_path: Path
) -> None:
    """examples/nginx.conf in front of three replicas on one store; it retries exactly what
    guard.testing.nginx retries."""
    text = (EXAMPLES / "nginx.conf").read_text()
    for directive in ("proxy_next_upstream error timeout;", "least_conn;", "@bad_gateway",
                      "error_page 413 @too_large;", "client_max_body_size 512m;"):  # fmt: skip
        assert directive in render_config(["http://127.0.0.1:1"], 1)
        assert directive in text
    assert "non_idempotent;" not in text.replace("`non_idempotent`", "")
    # calguard's own limit lowered, and nginx's (512 MB, for file uploads) with it, so that
    # both refusals are seen without sending half a gigabyte
    settings = load_settings(
        None,
        {
            "upstream": upstream,
            "store": f"sqlite:///{tmp_path / 'c.db'}",
            "max_body_bytes": 4_000_000,
        },
    )
    conf = text.replace("client_max_body_size 512m;", "client_max_body_size 4m;")
    with ExitStack() as stack:
        lb = behind_the_example_nginx(stack, settings, conf)
        client = stack.enter_context(openai.OpenAI(base_url=f"{lb}/v1", api_key="x", max_retries=0))
        q = "Question: Which is 2 + 2?\nA. three\nB. four\nC. five\nD. six\nAnswer:"
        for _ in range(6):
            r = client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": q}],
                extra_body={"guard": {"calibration": "pride"}},
            )
            assert (r.model_extra or {})["guard"]["calibration"] == "pride"
        with client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hello"}], stream=True
        ) as stream:
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        for size in (4_100_000, 5_000_000):  # refused by calguard, then by nginx itself
            with pytest.raises(openai.APIStatusError) as refused:
                client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "x" * size}]
                )
            assert refused.value.status_code == 413
            assert refused.value.type == "invalid_request_error"  # an OpenAI-style body


def chunk(content: str | None) -> bytes:
    delta = {} if content is None else {"content": content}
    event = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "slow",
             "choices": [{"index": 0, "delta": delta,
                          "finish_reason": None if content is not None else "stop"}]}  # fmt: skip
    return f"data: {json.dumps(event)}\n\n".encode()


def slow_stream(read: threading.Event, waited: list[bool]) -> Starlette:
    """An upstream that streams one event, then the rest only once the test has ``read`` the
    first one (or after 30 s): what a model that takes its time to write looks like."""

    async def chat(request: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            yield chunk("first ")
            waited.append(await asyncio.to_thread(read.wait, 30))
            yield chunk("second")
            yield chunk(None)
            yield b"data: [DONE]\n\n"

        await request.body()
        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def test_a_stream_through_the_nginx_conf_arrives_event_by_event(
    nginx_bin: str, tmp_path: Path
) -> None:
    """Streamed replies pass nginx as they are written (proxy_buffering off), not when the
    upstream has finished: the openai client reads the first event while the upstream is still
    waiting to write the next."""
    read, waited = threading.Event(), []
    with ExitStack() as stack:
        up = stack.enter_context(serve_in_thread(slow_stream(read, waited)))
        settings = load_settings(
            None, {"upstream": f"{up}/v1", "store": f"sqlite:///{tmp_path / 'c.db'}"}
        )
        lb = behind_the_example_nginx(stack, settings)
        client = stack.enter_context(openai.OpenAI(base_url=f"{lb}/v1", api_key="x", max_retries=0))
        pieces = []
        with client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "write slowly"}], stream=True
        ) as stream:
            for c in stream:
                if c.choices and c.choices[0].delta.content:
                    pieces.append(c.choices[0].delta.content)
                    read.set()
    assert pieces == ["first ", "second"]
    assert waited == [True]  # the client had the first event before the upstream wrote more


@pytest.mark.usefixtures("settled_gc")
def test_the_inspect_task_runs_against_the_fake_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from inspect_ai import eval

    monkeypatch.setenv("INSPECT_LOG_DIR", str(tmp_path / "logs"))
    lines = run_example("inspect_task.py", capsys).splitlines()
    assert [line.split()[0] for line in lines] == ["none", "adaptive"]
    assert "calls/sample 1.00" in lines[0]
    assert "RStd" in lines[1]
    assert len(list((tmp_path / "logs").glob("*.eval"))) == 2
    # As `inspect eval examples/inspect_task.py -T calibration=pride` finds and runs it.
    key = {"What is 7 multiplied by 8?": "56"}  # the rest: the fake's arbitrary pick
    monkeypatch.chdir(EXAMPLES.parent)
    [log] = eval(
        "examples/inspect_task.py", model="calguard-fake/simulated",
        model_args={"answers": key}, task_args={"calibration": "pride"}, display="none",
        log_dir=str(tmp_path / "logs"),
    )  # fmt: skip
    assert log.status == "success"
    assert log.results is not None
    assert log.eval.task_args["calibration"] == "pride"
    assert log.results.total_samples == 40
