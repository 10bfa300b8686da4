"""A relayed body (an image prompt, a compaction's items) that names a route with its own
provider and base URL goes to the configured ``upstream`` under the route's client-facing
name: the prompt reaches a deployment the operator routed that model away from (``upstream``
a hosted API, the route an on-premises model). Since ea59480 this also holds where every
route has its own provider (before: a 404 'no default upstream'); with mixed routes it did
already."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.scripted_upstream import Script, create_scripted_upstream


@pytest.mark.xfail(
    strict=True,
    reason="relays go to the default upstream whatever route the body's model names",
)
def test_a_relayed_body_naming_an_own_provider_route_does_not_reach_the_default_upstream(
    tmp_path: Path,
) -> None:
    default, private = Script(), Script()
    with (
        serve_in_thread(create_scripted_upstream(default)) as up,
        serve_in_thread(create_scripted_upstream(private)) as own,
    ):
        route = RouteConfig(upstream_model="onprem", api_base=f"{own}/v1", api_key="r")
        settings = Settings(
            upstream=f"{up}/v1",
            upstream_key="u",
            store=f"sqlite:///{tmp_path / 'd.db'}",
            routes={"private": route},
        )
        with serve_in_thread(create_app(settings)) as url:
            body = {"model": "private", "prompt": "the confidential design"}
            httpx.post(f"{url}/v1/images/generations", json=body)
    sent = [r["body"] for r in default.requests if r["path"] == "images/generations"]
    assert sent == [], "the private route's prompt went to the default upstream"
