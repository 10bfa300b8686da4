"""bench.drift runs and reports every model (small sizes)."""

from __future__ import annotations

import pytest

from bench import drift


def test_the_drift_bench_reports_each_way_and_each_key(capsys: pytest.CaptureFixture[str]) -> None:
    drift.swapped(before=100, after=100, seeds=1)
    drift.false_alarms(streams=1, questions=200, pool=50)
    out = capsys.readouterr().out.splitlines()
    swaps = [line for line in out if "after the swap" in line]
    assert len(swaps) == 3 * 6  # three ways, the six four-option simulated models
    assert all("learned afresh on" in line for line in swaps)
    told = [line for line in swaps if "told of the swap" in line]
    assert all("learned afresh on 1/1" in line for line in told)
    alarms = [line for line in out if "tripped on" in line]
    assert len(alarms) >= 9  # the simulated family and the flat model, with the recordings
