"""Prometheus metrics (prometheus_client), one registry per app.

Label sets are bounded: endpoints are labelled by route template (``/v1/models/{model}``), never
by the raw path, and anything unmatched is ``other``; policy and task names come from the
config, error types from :mod:`guard.errors`. prometheus_client escapes label values.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "calguard_requests", "requests through the pipeline, by task", ["task"], registry=r
        )
        self.upstream_calls = Counter(
            "calguard_upstream_calls", "HTTP calls made to upstreams", registry=r
        )
        self.flags = Counter(
            "calguard_flags", "verdicts by policy and action", ["policy", "action"], registry=r
        )
        self.errors = Counter("calguard_errors", "error replies by type", ["type"], registry=r)
        self.latency = Histogram(
            "calguard_request_seconds",
            "request latency by endpoint (route template)",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
