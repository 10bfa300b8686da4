"""Test ports never meet: each pytest-xdist worker has its own, below the kernel's own range."""

from __future__ import annotations

import itertools
import socket

import pytest

from guard.testing import ports


def slice_of(monkeypatch: pytest.MonkeyPatch, worker: str, count: int) -> range:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(count))
    return ports._slice()


def test_workers_have_disjoint_slices_below_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slices = [slice_of(monkeypatch, f"gw{i}", 4) for i in range(4)]
    assert all(len(s) > 1000 for s in slices)
    assert all(set(a).isdisjoint(b) for a, b in itertools.combinations(slices, 2))
    assert min(s.start for s in slices) == ports.LOW
    assert max(s.stop for s in slices) <= ports._ephemeral_low()
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    assert ports._slice() == range(ports.LOW, ports.LOW + len(ports._slice()))  # no xdist: one


def test_a_port_handed_out_is_not_handed_out_again_soon() -> None:
    given = [ports.free_port() for _ in range(200)]
    assert len(set(given)) == 200
    low = ports._ephemeral_low()
    assert all(ports.LOW <= p < low for p in given)  # where bind(0) never lands


def test_a_port_something_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        monkeypatch.setattr(
            ports, "_turns", itertools.cycle([busy, busy + 1 if busy < 65535 else busy - 1])
        )
        monkeypatch.setattr(ports, "_size", 2)
        assert ports.free_port() != busy
