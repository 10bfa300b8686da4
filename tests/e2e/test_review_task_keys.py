"""Calibration state per key for the classification task: what one request learns stays with
requests that ask the same classification."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.task_upstream import FACES, REVIEW, ask, evidence, judge_answer


@pytest.mark.parametrize("face", sorted(FACES))
def test_different_label_sets_do_not_share_a_key(face: str, tmp_path: Path) -> None:
    """The key joined the labels with '/': ["yes/no", "maybe"] and ["yes", "no/maybe"] were
    one key, so the second classification was calibrated with the first one's prior."""
    with FACES[face](judge_answer, tmp_path) as (client, _):
        first = evidence(ask(client, REVIEW, {"task": "classify", "labels": ["yes/no", "maybe"]}))
        second = evidence(ask(client, REVIEW, {"task": "classify", "labels": ["yes", "no/maybe"]}))
        fresh = evidence(ask(client, REVIEW, {"task": "classify", "labels": ["yes", "no/maybe"]}))
    assert first["key"] != second["key"]
    assert second["key"] == fresh["key"]


def test_the_previous_prior_per_key_is_bounded(tmp_path: Path) -> None:
    from guard.config import RouteConfig, Settings
    from guard.endpoints import CHAT
    from guard.pipeline import Pipeline
    from guard.store import open_store
    from guard.tasks.job import Recent
    from tests.guard.test_pipeline import Recorder

    route = RouteConfig(policies=[{"type": "prior_skew", "action": "flag"}])
    settings = Settings(default_route=route)
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    pipeline = Pipeline(settings, store, upstream=Recorder(), cache=Recent(limit=3))

    async def run() -> None:
        for i in range(6):
            body = {
                "model": "m",
                "messages": [{"role": "user", "content": "Say A or B:"}],
                "guard": {"task": "classify", "labels": ["A", "B"], "key": f"k{i}"},
            }
            reply = await pipeline.handle(CHAT, body, f"cg-{i}")
            assert reply.status == 200, reply.body

    asyncio.run(run())
    assert len(pipeline._last_prior) <= 3
