"""Fixtures shared by the end-to-end modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.replay import create_replay_upstream
from guard.testing.servers import serve_in_thread
from tests.e2e.differential import Pair, calguard_in_front


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """A raw upstream and a real calguard in front of it (:mod:`tests.e2e.differential`)."""
    with calguard_in_front(tmp_path_factory.mktemp("differential") / "d.db") as both:
        yield both


@pytest.fixture(scope="module")
def replay(recorded: Callable[[str], Path]) -> Iterator[str]:
    """The replay upstream of Llama-2-13b-chat's ARC recording and the SST-2 one (base URL)."""
    files = [recorded("arc_0s_Llama-2-13b-chat-hf.jsonl"), recorded("sst2_train_labelprobs.jsonl")]
    with serve_in_thread(create_replay_upstream(files)) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def replay_proxy(replay: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A calguard proxy (SQLite, the default route) in front of :func:`replay` (base URL)."""
    db = tmp_path_factory.mktemp("proxy") / "calguard.db"
    settings = Settings(upstream=replay, store=f"sqlite:///{db}", default_route=RouteConfig())
    with serve_in_thread(create_app(settings)) as url:
        yield f"{url}/v1"
