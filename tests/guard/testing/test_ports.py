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


def test_workers_have_disjoint_slices_outside_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if len(ports._room()) < 4000:
        pytest.skip("this machine's ephemeral port range leaves little room outside it")
    slices = [slice_of(monkeypatch, f"gw{i}", 4) for i in range(4)]
    assert all(len(s) > 900 for s in slices)
    assert all(set(a).isdisjoint(b) for a, b in itertools.combinations(slices, 2))
    low, high = ports._ephemeral()
    assert all(p < low or p > high for s in slices for p in (s.start, s.stop - 1))
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    assert ports._slice() == ports._room()  # no xdist: all of it


def test_a_port_handed_out_is_not_handed_out_again_soon() -> None:
    given = [ports.free_port() for _ in range(200)]
    assert len(set(given)) == 200
    low, high = ports._ephemeral()
    assert all(p < low or p > high for p in given)  # where bind(0) never lands


def test_a_port_something_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        monkeypatch.setattr(
            ports, "_turns", itertools.cycle([busy, busy + 1 if busy < 65535 else busy - 1])
        )
        monkeypatch.setattr(ports, "_size", 2)
        assert ports.free_port() != busy


def test_a_machine_whose_ephemeral_range_starts_low_takes_ports_above_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: such a machine had no slice (every port from the kernel, the race back)."""
    monkeypatch.setattr(ports, "_ephemeral", lambda: (10000, 50000))
    assert ports._room() == range(50001, 65536)
    assert slice_of(monkeypatch, "gw1", 2) == range(57768, 65535)
    monkeypatch.setattr(ports, "_ephemeral", lambda: (1024, 65535))
    assert slice_of(monkeypatch, "gw0", 2) == range(0)  # no room: the kernel's choice
