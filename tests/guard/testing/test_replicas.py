"""guard/testing/replicas.py: replicas start on free ports, one whose port was taken meanwhile
is started again on another, and all are stopped on exit."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from guard.testing import replicas as replicas_module
from guard.testing.replicas import run_replicas
from guard.testing.servers import free_port


@pytest.fixture
def taken_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A port another process listens on, handed out first by ``free_port`` (another test run
    took it between ``free_port`` and the replica's bind)."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(16)
        port = int(other.getsockname()[1])
        ports = iter([port])
        monkeypatch.setattr(replicas_module, "free_port", lambda: next(ports, None) or free_port())
        yield port


def test_a_replica_whose_port_was_taken_starts_on_another(taken_port: int, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'c.db'}"
    with run_replicas(1, upstream="http://127.0.0.1:9/v1", store=store) as group:
        assert group.urls[0] != f"http://127.0.0.1:{taken_port}"
        assert httpx.get(f"{group.urls[0]}/healthz", timeout=10).status_code == 200
        process = group.processes[0]
    assert process.poll() is not None  # stopped on exit
