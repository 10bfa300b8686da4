"""guard/evaluation/report_store.py: the traffic table's rows, order and limit."""

from __future__ import annotations

from guard.evaluation.report_store import NO_KEY, KeyTraffic, _traffic, format_traffic


def test_rows_busiest_first_with_flag_only_keys_and_the_unkeyed_row_last() -> None:
    states = {
        "quiet": {"traffic": {"pride": {"requests": 2, "calls": 8}}},
        "busy": {"traffic": {"pride": {"requests": 9, "calls": 12}, "adaptive": {"requests": 1}}},
        "old": {"pride": {}},  # written before traffic was counted
    }
    flags = {("busy", "flag"): 2, ("busy", "block"): 1, (None, "block"): 4, ("judge", "flag"): 1}
    rows = _traffic(states, flags)
    assert [r.name for r in rows] == ["busy", "quiet", "judge", "old", NO_KEY]
    assert rows[0] == KeyTraffic("busy", ("adaptive", "pride"), 10, 12, 2, 1)
    assert rows[2] == KeyTraffic("judge", (), None, None, 1, 0)
    assert rows[3] == KeyTraffic("old", ("pride",), None, None, 0, 0)
    assert rows[4] == KeyTraffic(None, (), None, None, 0, 4)


def test_beyond_the_limit_the_rest_is_one_row() -> None:
    rows = [KeyTraffic(f"k{i}", ("pride",), 10 - i, 20 - i, i, 0) for i in range(5)]
    rows.append(KeyTraffic(None, (), None, None, 1, 2))
    lines = format_traffic(rows, limit=2).splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["k0", "k1", "(3", NO_KEY.split()[0]]
    assert lines[4].split()[3:] == ["pride", "21", "51", "2.43", "9", "0"]  # k2 + k3 + k4
    assert lines[5].split()[2:] == ["-", "-", "-", "-", "1", "2"]
    assert format_traffic(rows).count("\n") == 7  # no limit: every row
    assert "more keys" not in format_traffic(rows, limit=5)  # the unkeyed row is not a key
