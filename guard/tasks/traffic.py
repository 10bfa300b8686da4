"""Traffic per calibration key, counted in the key's own state.

A task that writes a key's state (one transaction per question or input) also counts, under
:data:`TRAFFIC`, per method: the requests that taught it and the upstream calls they made (every
HTTP call, a refused logprob attempt or a failed order included). Counting rides on that write:
no store round trip of its own. Requests that write no state (``none`` classification, judges)
are not counted here; their flags are, in the flag log.
"""

from __future__ import annotations

from typing import Any

from guard.store import State

TRAFFIC = "traffic"  # the state entry; no calibration may take this name


def counted(state: State, method: str, calls: int) -> State:
    """``state`` with one more request of ``method`` that made ``calls`` upstream calls."""
    traffic = dict(state.get(TRAFFIC) or {})
    mine = traffic.get(method) or {}
    traffic[method] = {
        "requests": int(mine.get("requests", 0)) + 1,
        "calls": int(mine.get("calls", 0)) + calls,
    }
    return {**state, TRAFFIC: traffic}


def traffic_of(state: State) -> dict[str, dict[str, Any]]:
    """Per method, ``{"requests", "calls"}`` as counted (empty for a state from before)."""
    found = state.get(TRAFFIC)
    return dict(found) if isinstance(found, dict) else {}


__all__ = ["TRAFFIC", "counted", "traffic_of"]
