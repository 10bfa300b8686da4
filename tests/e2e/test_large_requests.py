"""A text endpoint takes the bodies OpenAI takes: a chat request with an image of a few MB as a
data URL (OpenAI takes 50 MB of images a request) goes through calguard's default settings, its
policies included, and reaches the upstream as the SDK sent it. Before, any body over 4 MB was
a 413. A real calguard in front of a raw upstream."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator

import openai
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.differential import KEY, Pair
from tests.e2e.raw_upstream import JSON, raw_upstream, response

CHAT = (
    b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"a cat"},"logprobs":null,"finish_reason":"stop"}]}'
)
DENY = {"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """calguard with its default body limit, a prompt policy on the route ``m``."""
    with raw_upstream() as up:
        db = tmp_path_factory.mktemp("large") / "l.db"
        settings = Settings(
            upstream=f"{up.url}/v1",
            upstream_key=KEY,
            store=f"sqlite:///{db}",
            routes={"m": RouteConfig(policies=[DENY])},
        )
        with serve_in_thread(create_app(settings)) as url:
            yield Pair(up, url)


def _ask(base: str, image: bytes, text: str = "what is this?") -> openai.types.chat.ChatCompletion:
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]
    with openai.OpenAI(base_url=f"{base}/v1", api_key="sk-client", max_retries=0) as c:
        return c.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": content}],  # type: ignore[misc,list-item]
        )


def test_a_chat_request_with_a_large_image_goes_through(pair: Pair) -> None:
    pair.up.answers[b"/chat/completions"] = response(b"200 OK", [JSON], CHAT)
    image = os.urandom(6_000_000)  # 8 MB as base64
    assert _ask(pair.calguard, image).choices[0].message.content == "a cat"
    sent = json.loads(pair.up.got[-1].body)
    url = sent["messages"][0]["content"][1]["image_url"]["url"]
    assert base64.b64decode(url.split(",", 1)[1]) == image


def test_the_policies_still_read_the_text_beside_it(pair: Pair) -> None:
    pair.up.answers[b"/chat/completions"] = response(b"200 OK", [JSON], CHAT)
    before = len(pair.up.got)
    with pytest.raises(openai.BadRequestError) as blocked:
        _ask(pair.calguard, os.urandom(6_000_000), "something forbidden")
    assert blocked.value.code == "denylist"
    assert len(pair.up.got) == before  # never sent
