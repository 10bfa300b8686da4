"""``calguard serve`` as a real process (the CLI, uvicorn, a YAML config, environment variables),
driven by the openai client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from guard.store import SQLiteStore
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread
from tests.e2e.serve_process import calguard_serve, run_cli

QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        port = free_port()
        config = tmp_path / "calguard.yaml"
        config.write_text(
            f"port: {port}\nstore: sqlite:///{tmp_path / 'cg.db'}\n"
            "routes:\n  mcq-model:\n    upstream_model: sim-biased-llm\n    mcq: cyclic\n"
            "    auto_detect: true\n"
        )
        env = {**os.environ, "CALGUARD_UPSTREAM": f"{up}/v1", "CALGUARD_UPSTREAM_KEY": "sk-x"}
        with calguard_serve(config, port, env) as (url, _):
            yield url


def test_calguard_serve_answers_the_openai_client(served: str) -> None:
    with openai.OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0) as client:
        r = client.chat.completions.create(
            model="mcq-model", messages=[{"role": "user", "content": QUESTION}]
        )
        g = (r.model_extra or {})["guard"]
        assert (g["calibration"], g["upstream_calls"]) == ("cyclic", 4)  # the YAML route
        r = client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content == "echo: hi"  # the upstream from the environment
        assert "mcq-model" in [m.id for m in client.models.list().data]


def test_serve_without_an_upstream_says_how_to_fix_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALGUARD_")}
    out = subprocess.run(
        [sys.executable, "-m", "guard.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert "--upstream" in out.stderr


def test_a_typo_in_the_config_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("upstream: http://127.0.0.1:9/v1\nroutes:\n  m:\n    mcqq: pride\n")
    out = subprocess.run(
        [sys.executable, "-m", "guard.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert "routes.m.mcqq" in out.stderr


@pytest.mark.parametrize(
    ("policy", "named"),
    [("{type: pi}", "pi"), ("{type: pii, params: {kindz: [email]}}", "kindz")],
)
def test_an_unknown_policy_type_or_parameter_stops_start_up(
    tmp_path: Path, policy: str, named: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(f"upstream: http://127.0.0.1:9/v1\ndefault_route:\n  policies: [{policy}]\n")
    out = subprocess.run(
        [sys.executable, "-m", "guard.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert named in out.stderr
    assert "default_route.policies[0]" in out.stderr


# -- issue 8: configuration and CLI as users expect ---------------------------------------------

FLAG_ALL = [{"type": "max_length", "params": {"max_chars": 5}, "action": "flag", "on": "response"}]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALGUARD_")}
    return {**env, **extra}


def no_traceback(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("calguard: error: ")
    return out.stderr


@pytest.mark.parametrize(
    ("yaml", "named"),
    [
        ("upstream: not a url\n", "upstream: 'not a url' is not an http(s) URL"),
        (
            "upstream: http://127.0.0.1:9/v1\nstore: calguard.db\n",
            "store: 'calguard.db' is not a store URL; a SQLite file is written "
            "sqlite:///calguard.db",
        ),
        (
            "upstream: http://127.0.0.1:9/v1\nupstream_key: os.environ/CG_ABSENT_KEY\n",
            "upstream_key: os.environ/CG_ABSENT_KEY names the environment variable "
            "'CG_ABSENT_KEY', which is not set",
        ),
        ("upstream: http://127.0.0.1:9/v1\ntimout_s: 3\n", "(did you mean 'timeout_s'?)"),
    ],
)
def test_what_cannot_work_stops_start_up_in_one_line(tmp_path: Path, yaml: str, named: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml)
    out = run_cli(["serve", "--config", str(config)], clean_env(), cwd=tmp_path)
    assert named in no_traceback(out)
    assert list(tmp_path.iterdir()) == [config]  # no calguard.db was created


def test_version_and_bare_calguard_as_a_process() -> None:
    out = run_cli(["--version"], clean_env())
    assert (out.returncode, out.stdout.startswith("calguard ")) == (0, True)
    out = run_cli([], clean_env())
    assert out.returncode == 2
    assert out.stderr.startswith("usage: calguard")
    assert "serve" in out.stderr


def test_flags_list_without_a_store_says_so(tmp_path: Path) -> None:
    out = run_cli(["flags", "list"], clean_env(), cwd=tmp_path)
    assert "no store at calguard.db" in no_traceback(out)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def fake() -> Iterator[tuple[str, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        yield f"{up}/v1", state


def test_two_workers_answer_and_write_to_one_store(
    tmp_path: Path, fake: tuple[str, FakeUpstreamState]
) -> None:
    """``--workers 2``: two processes answer (their pids differ) and both log to one file."""
    upstream, _ = fake
    port, db = free_port(), tmp_path / "shared.db"
    config = tmp_path / "c.yaml"
    config.write_text(
        json.dumps({"store": f"sqlite:///{db}", "default_route": {"policies": FLAG_ALL}})
    )
    env = clean_env(CALGUARD_UPSTREAM=upstream)
    with calguard_serve(config, port, env, ["--port", str(port), "--workers", "2"]) as (url, _):
        # A keep-alive connection stays with the worker that accepted it: open connections
        # until two workers have answered (bounded), then send one flagged request on each.
        clients: dict[int, httpx.Client] = {}
        try:
            for _ in range(600):  # bounded: the second worker may still be starting
                c = httpx.Client(base_url=url, timeout=30)
                pid = c.get("/healthz").json()["pid"]
                if pid not in clients:
                    clients[pid] = c
                    if len(clients) == 2:
                        break
                    continue
                c.close()
                time.sleep(0.05)
            assert len(clients) == 2, "only one worker answered 600 new connections"
            for pid, c in clients.items():
                r = c.post(
                    "/v1/chat/completions",
                    headers={"x-request-id": f"from-{pid}"},
                    json={"model": "m", "messages": [{"role": "user", "content": "hello"}]},
                )
                assert r.headers["x-calguard-flags"] == "max_length"
                assert c.get("/healthz").json()["pid"] == pid  # still that worker
                assert c.get("/readyz").status_code == 200
        finally:
            for c in clients.values():
                c.close()
    store = SQLiteStore(db)
    try:
        assert sorted(f["request_id"] for f in store.flags()) == sorted(
            f"from-{pid}" for pid in clients
        )
    finally:
        store.close()


def test_fake_upstream_lets_a_newcomer_try_everything_without_a_key(tmp_path: Path) -> None:
    """``calguard serve --fake-upstream``: the OpenAI SDK, a calibrated MCQ, a policy, and the
    flag log, with no key and no network beyond loopback."""
    port, db = free_port(), tmp_path / "try.db"
    config = tmp_path / "c.yaml"
    config.write_text(
        f"store: sqlite:///{db}\n"
        "routes:\n  guarded:\n    policies:\n      - {type: pii, action: redact}\n"
    )
    args = ["--fake-upstream", "--port", str(port)]
    with (
        calguard_serve(config, port, clean_env(), args) as (url, _proc),
        openai.OpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0) as client,
    ):
        r = client.chat.completions.create(
            model="any-name",
            messages=[{"role": "user", "content": QUESTION}],
            extra_body={"guard": {"calibration": "cyclic"}},
        )
        g = (r.model_extra or {})["guard"]
        assert (g["calibration"], g["upstream_calls"]) == ("cyclic", 4)
        assert r.choices[0].message.content in "ABCD"
        r = client.chat.completions.create(
            model="guarded",
            messages=[{"role": "user", "content": "my mail is ann@example.com"}],
        )
        assert "ann@example.com" not in (r.choices[0].message.content or "")
        assert httpx.get(f"{url}/readyz").status_code == 200
    out = run_cli(["flags", "list", "--store", f"sqlite:///{db}"], clean_env())
    assert out.returncode == 0
    assert "pii" in out.stdout
    assert "1 record(s)" in out.stderr


def test_env_refs_and_a_litellm_model_list_in_a_real_process(
    tmp_path: Path, fake: tuple[str, FakeUpstreamState]
) -> None:
    """A LiteLLM proxy config's model_list, keys from ``os.environ/NAME``, served by calguard."""
    upstream, state = fake
    port = free_port()
    config = tmp_path / "litellm.yaml"
    config.write_text(
        f"port: {port}\nstore: sqlite:///{tmp_path / 'm.db'}\n"
        "api_keys: [os.environ/CG_TEAM_KEY]\n"
        "model_list:\n"
        "  - model_name: team-model\n"
        "    litellm_params:\n"
        "      model: openai/sim-biased-llm\n"
        f"      api_base: {upstream}\n"
        "      api_key: os.environ/CG_PROVIDER_KEY\n"
    )
    env = clean_env(CG_TEAM_KEY="sk-team", CG_PROVIDER_KEY="sk-provider")
    with (
        calguard_serve(config, port, env) as (url, _),
        openai.OpenAI(base_url=f"{url}/v1", api_key="sk-team", max_retries=0) as client,
    ):
        r = client.chat.completions.create(
            model="team-model", messages=[{"role": "user", "content": "hi"}]
        )
        assert r.choices[0].message.content == "echo: hi"
        assert state.requests[-1]["model"] == "sim-biased-llm"
        assert state.headers[-1]["authorization"] == "Bearer sk-provider"
        assert "team-model" in [m.id for m in client.models.list().data]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()


def test_readyz_names_a_dead_upstream_in_a_real_process(tmp_path: Path) -> None:
    port, dead = free_port(), free_port()
    config = tmp_path / "c.yaml"
    config.write_text(
        f"upstream: http://127.0.0.1:{dead}/v1\nport: {port}\nmax_attempts: 1\n"
        f"store: sqlite:///{tmp_path / 'r.db'}\n"
    )
    with calguard_serve(config, port, clean_env()) as (url, _):
        assert httpx.get(f"{url}/healthz").status_code == 200  # alive
        r = httpx.get(f"{url}/readyz", timeout=30)  # but not ready
    assert r.status_code == 503
    assert r.json()["error"]["message"].startswith("not ready — upstream: ")


@pytest.mark.parametrize("command", ["serve", "replay-upstream"])
def test_a_port_in_use_is_one_line_and_status_2(tmp_path: Path, command: str) -> None:
    """Before: uvicorn's '[Errno 98] ... address already in use' after calguard had said where
    it listens, and exit status 3 (README's examples/eval_replay.sh ran into it)."""
    recorded = (
        Path(__file__).parents[2] / "../shared/data/recorded/arc_0s_Llama-2-13b-chat-hf.jsonl"
    )
    if command == "replay-upstream" and not recorded.exists():
        pytest.skip("../shared/data/recorded is not here")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        args = {
            "serve": ["serve", "--upstream", "http://127.0.0.1:9/v1", "--port", port],
            "replay-upstream": ["replay-upstream", str(recorded), "--port", port],
        }[command]
        out = subprocess.run(
            [sys.executable, "-m", "guard.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("CALGUARD_")},
        )
    assert out.returncode == 2, out.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "--port" in out.stderr
