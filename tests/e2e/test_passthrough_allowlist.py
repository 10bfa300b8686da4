"""Relayed paths are not read by policies; ``passthrough_paths`` is how an operator with
prompt-side policies keeps the Batch API from walking around them (README, "Security")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi import FastAPI, Request

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread

# prompt-side: where answers may be blocked, stored ones are not relayed (test_review_rv_guards)
DENY = [{"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block", "on": "prompt"}]
BATCH_LINE = (
    b'{"custom_id": "1", "method": "POST", "url": "/v1/chat/completions", "body": '
    b'{"model": "m", "messages": [{"role": "user", "content": "the forbidden word"}]}}\n'
)


def recording_upstream(seen: list[tuple[str, str, bytes]]) -> FastAPI:
    """An upstream that records every request and answers files and batches as OpenAI does."""
    app = FastAPI()

    @app.api_route("/v1/{path:path}", methods=["GET", "POST"])
    async def anything(path: str, request: Request) -> dict[str, Any]:
        seen.append((request.method, path, await request.body()))
        if path == "files":
            return {
                **{"id": "file-1", "object": "file", "bytes": len(BATCH_LINE), "created_at": 0},
                **{"filename": "batch.jsonl", "purpose": "batch", "status": "processed"},
            }
        return {
            **{"id": "batch-1", "object": "batch", "endpoint": "/v1/chat/completions"},
            **{"input_file_id": "file-1", "completion_window": "24h", "status": "validating"},
            "created_at": 0,
        }

    return app


@pytest.fixture
def proxy(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, list[Any]]]:
    seen: list[tuple[str, str, bytes]] = []
    with serve_in_thread(recording_upstream(seen)) as up:
        settings = Settings(
            upstream=f"{up}/v1",
            store=f"sqlite:///{tmp_path / 'p.db'}",
            default_route=RouteConfig(policies=DENY),
            passthrough_paths=request.param,
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url, seen


@pytest.mark.parametrize("proxy", [None], indirect=True)
def test_by_default_a_batch_input_file_is_relayed_unread(proxy: tuple[str, list[Any]]) -> None:
    url, seen = proxy
    with openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client:
        client.files.create(file=("batch.jsonl", BATCH_LINE), purpose="batch")
        client.batches.create(
            input_file_id="file-1", endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert [(m, p) for m, p, _ in seen] == [("POST", "files"), ("POST", "batches")]
    assert BATCH_LINE in seen[0][2]  # the denied word reached the provider, as uploaded


@pytest.mark.parametrize("proxy", [["/models*", "/chat/completions*"]], indirect=True)
def test_an_allow_list_without_files_keeps_the_batch_api_out(
    proxy: tuple[str, list[Any]],
) -> None:
    url, seen = proxy
    with openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client:
        with pytest.raises(openai.NotFoundError, match="not passed through by this proxy"):
            client.files.create(file=("batch.jsonl", BATCH_LINE), purpose="batch")
        with pytest.raises(openai.NotFoundError, match="not passed through by this proxy"):
            client.batches.create(
                input_file_id="file-1", endpoint="/v1/chat/completions", completion_window="24h"
            )
        client.chat.completions.retrieve("chatcmpl-1")  # stored completions: listed, relayed
        client.models.list()  # the model list too
    assert [(m, p) for m, p, _ in seen] == [
        ("GET", "chat/completions/chatcmpl-1"),
        ("GET", "models"),
    ]
