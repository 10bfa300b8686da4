"""End to end on real data: the recorded ARC distributions served by a replay upstream, asked
through the running proxy by the openai client, must score as the offline evaluation of the same
method and arrival order does (within 0.5 point; the same planner makes the same decisions)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import openai
import pytest

from calibrators.planner import PermutationPlanner
from guard.config import RouteConfig, Settings
from guard.evaluation.mcq import run_order
from guard.evaluation.recorded import McqRecords
from guard.evaluation.replay import replay_through_proxy
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, ReplayResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread


@pytest.fixture(scope="module")
def proxy(arc: McqRecords, tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    assert arc.questions is not None
    state = FakeUpstreamState(ReplayResponder(arc, arc.questions))
    db = tmp_path_factory.mktemp("replay") / "calguard.db"
    with serve_in_thread(create_fake_upstream(state)) as up:
        route = RouteConfig(budget=2.0)  # the planner's own defaults otherwise
        settings = Settings(upstream=f"{up}/v1", store=f"sqlite:///{db}", default_route=route)
        with (
            serve_in_thread(create_app(settings)) as px,
            openai.OpenAI(base_url=f"{px}/v1", api_key="test", max_retries=0) as client,
        ):
            yield client


@pytest.mark.parametrize("method", ["pride", "adaptive", "cyclic"])
def test_proxy_equals_offline_on_recorded_arc(
    arc: McqRecords, proxy: openai.OpenAI, method: str
) -> None:
    assert arc.questions is not None
    order = np.random.default_rng(0).permutation(len(arc))
    # A fresh key per method: the calibration key includes the method's own planner state.
    online = replay_through_proxy(proxy, arc, arc.questions, order, {"calibration": method})
    offline = run_order(arc, lambda n: PermutationPlanner(n, method, budget=2.0), order)
    assert online.accuracy == pytest.approx(offline.accuracy, abs=0.5)
    assert online.rstd == pytest.approx(offline.rstd, abs=0.5)
    assert online.calls == pytest.approx(offline.calls, abs=0.01)
