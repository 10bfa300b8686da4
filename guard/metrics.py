"""Prometheus text metrics, kept in process (no dependency): counters and latency sums."""

from __future__ import annotations

import threading
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._help: dict[str, tuple[str, str]] = {}

    def inc(
        self, name: str, value: float = 1.0, help: str = "", kind: str = "counter", **labels: str
    ) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._counters[name][key] += value
            self._help.setdefault(name, (help, kind))

    def observe_latency(self, endpoint: str, seconds: float) -> None:
        self.inc(
            "calguard_request_seconds_sum", seconds, "request latency", "counter", endpoint=endpoint
        )
        self.inc(
            "calguard_request_seconds_count", 1.0, "requests timed", "counter", endpoint=endpoint
        )

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name in sorted(self._counters):
                help_text, kind = self._help.get(name, ("", "counter"))
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")
                for labels, value in sorted(self._counters[name].items()):
                    lab = ",".join(f'{k}="{v}"' for k, v in labels)
                    lines.append(f"{name}{{{lab}}} {value:g}" if lab else f"{name} {value:g}")
        return "\n".join(lines) + "\n"
