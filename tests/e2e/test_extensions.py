"""Extending calguard from outside its packages: a toy label calibrator and a toy policy,
registered here (and a policy by the ``calguard.policies`` entry point), used from YAML, from
``create_app`` with the real openai client, and from ``wrap``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

import guard
from guard.calibrations import CALIBRATIONS
from guard.checks import load_policy_plugins
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread
from policies import Context, Verdict
from policies.registry import _TYPES, POLICY_TYPES, BuiltinPolicy, PolicyParams, register

LABELS = ["negative", "positive"]


class FlipCalibrator:
    """A toy label calibrator: always answers the label the raw model likes least."""

    def __init__(self, n_labels: int) -> None:
        self.n = n_labels
        self.seen = 0

    def update(self, logprobs: Any) -> None:
        self.seen += 1

    def calibrate(self, logprobs: Any) -> np.ndarray:
        x = np.asarray(logprobs, dtype=float).reshape(-1)
        return -x - np.log(np.exp(-x).sum())

    @property
    def log_prior(self) -> np.ndarray:
        return np.full(self.n, -np.log(self.n))

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "seen": self.seen}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlipCalibrator:
        c = cls(int(d["n"]))
        c.seen = int(d["seen"])
        return c


class ShoutParams(PolicyParams):
    limit: int = 3


class Shout(BuiltinPolicy[ShoutParams]):
    """A toy policy: flags text with more than ``limit`` exclamation marks."""

    name = "toy_shout"
    params_model = ShoutParams

    def check(self, ctx: Context) -> Verdict:
        n = ctx.text.count("!")
        return self.hit(f"{n} exclamation marks") if n > self.params.limit else self.passed()


class Whisper(Shout):
    """The same, installed through the ``calguard.policies`` entry point group."""

    name = "toy_whisper"


def model(text: str) -> dict[str, float] | None:
    if text.startswith("say: "):
        return {text[5:]: 1.0}
    return {" Positive": 0.9, " Negative": 0.1}  # a classifier that always leans positive


@pytest.fixture(autouse=True)
def toys(tmp_path: Path) -> Iterator[None]:
    guard.register_calibration("classify", "toy-flip", FlipCalibrator)
    if "toy_shout" not in POLICY_TYPES:
        register(Shout)
    dist = tmp_path / "plugins" / "toy_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[calguard.policies]\ntoy_whisper = {__name__}:Whisper\n"
    )
    sys.path.insert(0, str(tmp_path / "plugins"))
    yield
    sys.path.remove(str(tmp_path / "plugins"))
    del CALIBRATIONS["classify"]["toy-flip"]
    for name in ("toy_shout", "toy_whisper"):  # later tests see only the built-in policies
        _TYPES.pop(name, None)


CONFIG = """
store: sqlite:///{db}
routes:
  toy:
    upstream_model: sim
    classify: toy-flip
    policies:
      - type: toy_shout
        params: {{limit: 1}}
        on: response
      - type: toy_whisper
        params: {{limit: 2}}
        on: prompt
"""


def ask(create: Any, **kw: Any) -> Any:
    return create(
        model="toy",
        messages=[{"role": "user", "content": "Review: fine\nSentiment:"}],
        extra_body={"guard": {"task": "classify", "labels": LABELS}},
        **kw,
    )


def test_toys_from_yaml_through_create_app(tmp_path: Path) -> None:
    config = tmp_path / "calguard.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "x.db"))
    state = FakeUpstreamState(SimulatedResponder(), text_responder=model)
    with serve_in_thread(create_fake_upstream(state)) as up:
        settings = guard.load_settings(config, {"upstream": f"{up}/v1"})
        with (
            serve_in_thread(guard.create_app(settings)) as proxy,
            openai.OpenAI(base_url=f"{proxy}/v1", api_key="t", max_retries=0) as client,
        ):
            r = ask(client.chat.completions.create)
            g = (r.model_extra or {})["guard"]
            assert (g["calibration"], r.choices[0].message.content) == ("toy-flip", "negative")
            r = client.chat.completions.create(
                model="toy", messages=[{"role": "user", "content": "say: wow! yes!"}]
            )
            assert [f["policy"] for f in (r.model_extra or {})["guard"]["flags"]] == ["toy_shout"]
            r = client.chat.completions.create(
                model="toy", messages=[{"role": "user", "content": "say: hey!!!"}]
            )
            flagged = sorted(f["policy"] for f in (r.model_extra or {})["guard"]["flags"])
            assert flagged == ["toy_shout", "toy_whisper"]


def test_an_unknown_calibration_in_yaml_names_the_closest(tmp_path: Path) -> None:
    config = tmp_path / "calguard.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "x.db").replace("toy-flip", "toy-flp"))
    with pytest.raises(guard.ConfigError, match="did you mean 'toy-flip'"):
        guard.load_settings(config)


def test_toys_through_wrap(tmp_path: Path) -> None:
    load_policy_plugins()
    state = FakeUpstreamState(SimulatedResponder(), text_responder=model)
    with serve_in_thread(create_fake_upstream(state)) as up:
        route = guard.RouteConfig(
            classify="toy-flip", policies=[{"type": "toy_whisper", "action": "block"}]
        )
        client = guard.wrap(
            openai.OpenAI(base_url=f"{up}/v1", api_key="x", max_retries=0),
            store=f"sqlite:///{tmp_path / 'w.db'}",
            route=route,
        )
        r = ask(client.chat.completions.create)
        assert r.choices[0].message.content == "negative"
        with pytest.raises(guard.PolicyViolationError, match="toy_whisper"):
            client.chat.completions.create(
                model="toy", messages=[{"role": "user", "content": "say: no!!!!"}]
            )
        client.close()
