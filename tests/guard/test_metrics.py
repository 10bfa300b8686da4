"""guard.metrics: Prometheus text, escaped label values, one registry per instance."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from guard.metrics import CONTENT_TYPE, Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_render_is_prometheus_text_with_the_counts() -> None:
    m = Metrics()
    m.requests.labels(task="mcq").inc()
    m.requests.labels(task="mcq").inc()
    m.requests.labels(task="none").inc()
    m.upstream_calls.inc(4)
    m.flags.labels(policy="pii", action="redact").inc()
    m.errors.labels(type="upstream_error").inc()
    m.latency.labels(endpoint="/v1/chat/completions").observe(0.003)
    text = m.render().decode()
    assert "# TYPE calguard_requests_total counter" in text
    assert 'calguard_requests_total{task="mcq"} 2.0' in text
    samples = _samples(m)
    assert samples[("calguard_requests_total", (("task", "none"),))] == 1.0
    assert samples[("calguard_upstream_calls_total", ())] == 4.0
    assert samples[("calguard_flags_total", (("action", "redact"), ("policy", "pii")))] == 1.0
    assert samples[("calguard_errors_total", (("type", "upstream_error"),))] == 1.0
    ep = (("endpoint", "/v1/chat/completions"),)
    assert samples[("calguard_request_seconds_count", ep)] == 1.0
    assert samples[("calguard_request_seconds_bucket", (*ep, ("le", "0.0025")))] == 0.0
    assert samples[("calguard_request_seconds_bucket", (*ep, ("le", "0.005")))] == 1.0
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_a_label_value_cannot_forge_a_series() -> None:
    m = Metrics()
    evil = 'x"} 999\ncalguard_forged_total{a="b'
    m.flags.labels(policy=evil, action="flag").inc()
    text = m.render().decode()
    assert "\ncalguard_forged_total" not in text
    assert '\\"' in text
    assert "\\n" in text
    samples = _samples(m)
    names = {name for name, _ in samples}
    assert "calguard_forged_total" not in names
    # The value round-trips exactly as given, and counts once.
    assert samples[("calguard_flags_total", (("action", "flag"), ("policy", evil)))] == 1.0


def test_a_backslash_in_a_label_value_round_trips() -> None:
    m = Metrics()
    m.errors.labels(type="a\\b").inc()
    assert _samples(m)[("calguard_errors_total", (("type", "a\\b"),))] == 1.0


def test_two_instances_do_not_share_counters() -> None:
    one, two = Metrics(), Metrics()
    one.requests.labels(task="mcq").inc()
    one.upstream_calls.inc()
    assert ("calguard_requests_total", (("task", "mcq"),)) in _samples(one)
    assert ("calguard_requests_total", (("task", "mcq"),)) not in _samples(two)
    assert _samples(two)[("calguard_upstream_calls_total", ())] == 0.0
    assert _samples(one)[("calguard_upstream_calls_total", ())] == 1.0
