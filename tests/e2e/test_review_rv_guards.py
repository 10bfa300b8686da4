"""Ways around the policies a review of rarer surfaces found (rv-guards), each on the wire
through the real ``openai`` client or raw HTTP, failing before its fix: the legacy engines
paths (``/v1/engines/<model>/completions``, which LocalAI still serves) relayed unread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.test_attack_round import DENY_PROMPT, Recorder


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, Recorder]]:
    up = Recorder()
    with serve_in_thread(up) as upstream:
        settings = Settings(
            upstream=f"{upstream}/v1",
            store=f"sqlite:///{tmp_path / 'a.db'}",
            default_route=RouteConfig(policies=DENY_PROMPT),
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url, up


# -- a text endpoint under the legacy engines path -------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/engines/m/completions",
        "/v1/engines/m/chat/completions",
        "/v1/engines/m/embeddings",
        "/v1/Engines/M/Completions",  # LocalAI's router (Fiber) matches any case
        "/v1/deployments/m/chat/completions",
    ],
)
def test_a_text_endpoint_under_another_path_is_not_relayed(
    proxy: tuple[str, Recorder], path: str
) -> None:
    url, up = proxy
    r = httpx.post(url + path, json={"prompt": "say forbidden", "input": "forbidden"})
    assert r.status_code == 404, r.text  # observed before: 200, relayed with the word unread
    assert "send it as POST /v1/" in r.json()["error"]["message"]
    assert up.seen == []


def test_the_sdk_reaches_the_engines_path_only_through_the_policies(
    proxy: tuple[str, Recorder],
) -> None:
    url, up = proxy
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.post("/engines/m/completions", body={"prompt": "say forbidden"}, cast_to=object)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="m", prompt="say forbidden")
    assert up.seen == []


def test_other_posts_under_a_text_path_are_still_relayed(proxy: tuple[str, Recorder]) -> None:
    url, up = proxy
    r = httpx.post(url + "/v1/chat/completions/cmpl_1", json={"metadata": {"a": "b"}})
    assert r.status_code == 200
    assert [(m, p) for m, p, _ in up.seen] == [("POST", "/v1/chat/completions/cmpl_1")]
