"""``calguard serve`` as a real process (the CLI, uvicorn, a YAML config, environment variables),
driven by the openai client."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread
from tests.e2e.serve_process import calguard_serve

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
