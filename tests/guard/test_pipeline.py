"""guard.pipeline's choice of task: who gets calibrated (issue 8, "never take over a request
nobody asked to calibrate"). In-process, with a recording upstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from guard.config import RouteConfig, Settings
from guard.endpoints import CHAT
from guard.pipeline import Pipeline, wants_more_than_an_id
from guard.store import open_store
from guard.upstreams import RawResponse

MCQ = "Question: Which is 2 + 2?\nA. three\nB. four\nC. five\nD. six\nAnswer:"


class Recorder:
    """An upstream that answers "B" with logprobs over A-D and keeps every body it was sent
    (headers and query, which newer pipelines pass as keywords, are ignored)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def post(self, path: str, body: dict[str, Any], **_: Any) -> RawResponse:
        self.bodies.append(body)
        top = [
            {"token": t, "logprob": lp, "bytes": None}
            for t, lp in zip("BACD", (-0.1, -3, -4, -5), strict=True)
        ]
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": "B"},
            "logprobs": {
                "content": [{"token": "B", "logprob": -0.1, "bytes": None, "top_logprobs": top}]
            },
            "finish_reason": "stop",
        }
        done = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [choice],
        }
        return RawResponse(200, json.dumps(done).encode(), "application/json")

    async def stream(self, path: str, body: dict[str, Any], **_: Any) -> AsyncIterator[bytes]:
        raise AssertionError("not streamed here")
        yield b""  # pragma: no cover

    async def get(self, path: str, **_: Any) -> RawResponse:
        return RawResponse(404, b"{}", "application/json")

    async def aclose(self) -> None:
        return None


def handle(tmp_path: Path, body: dict[str, Any], auto_detect: bool) -> tuple[Any, Recorder]:
    up = Recorder()
    settings = Settings(default_route=RouteConfig(mcq="cyclic", auto_detect=auto_detect))
    pipeline = Pipeline(settings, open_store(f"sqlite:///{tmp_path / 'p.db'}"), upstream=up)
    reply = asyncio.run(pipeline.handle(CHAT, {"model": "m", **body}, "cg-test"))
    assert reply.error is None, reply.error
    return json.loads(reply.body), up


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_auto_detection_is_off_by_default() -> None:
    assert RouteConfig().auto_detect is False


def test_an_mcq_without_a_guard_object_passes_through_by_default(tmp_path: Path) -> None:
    out, up = handle(tmp_path, {"messages": user(MCQ)}, auto_detect=RouteConfig().auto_detect)
    assert "guard" not in out
    assert len(up.bodies) == 1


def test_a_route_with_auto_detect_calibrates_an_mcq(tmp_path: Path) -> None:
    out, up = handle(tmp_path, {"messages": user(MCQ)}, auto_detect=True)
    assert out["guard"]["calibration"] == "cyclic"
    assert len(up.bodies) == 4


@pytest.mark.parametrize(
    "guard", [{"calibration": "cyclic"}, {"options": ["three", "four", "five", "six"]}]
)
def test_a_guard_object_without_a_task_still_calibrates(tmp_path: Path, guard: Any) -> None:
    out, up = handle(tmp_path, {"messages": user(MCQ), "guard": guard}, auto_detect=False)
    assert out["guard"]["task"] == "mcq"
    assert len(up.bodies) == 4


@pytest.mark.parametrize(
    "extra",
    [
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"functions": [{"name": "f", "parameters": {}}]},
        {"response_format": {"type": "json_object"}},
        {"n": 2},
        {"max_tokens": 200},
        {"max_completion_tokens": 64},
    ],
)
@pytest.mark.parametrize("guard", [None, {"calibration": "cyclic"}])
def test_never_calibrated_unless_the_task_says_so(
    tmp_path: Path, extra: dict[str, Any], guard: Any
) -> None:
    body: dict[str, Any] = {"messages": user(MCQ), **extra}
    if guard is not None:
        body["guard"] = guard
    out, up = handle(tmp_path, body, auto_detect=True)
    assert "guard" not in out
    assert len(up.bodies) == 1
    assert {k: up.bodies[0][k] for k in extra} == extra  # sent on untouched
    # Named explicitly, the task wins.
    out, _ = handle(tmp_path, {**body, "guard": {"task": "mcq"}}, auto_detect=True)
    assert out["guard"]["task"] == "mcq"


@pytest.mark.parametrize(
    ("extra", "wants"),
    [
        ({}, False),
        ({"max_tokens": 16, "n": 1, "tools": [], "response_format": {"type": "text"}}, False),
        ({"max_tokens": 17}, True),
        ({"max_completion_tokens": 4000}, True),
        ({"n": 3}, True),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, True),
        ({"tools": [{"type": "function"}]}, True),
        ({"functions": [{"name": "f"}]}, True),
    ],
)
def test_wants_more_than_an_id(extra: dict[str, Any], wants: bool) -> None:
    assert wants_more_than_an_id({"model": "m", "messages": [], **extra}) is wants


def test_a_guard_object_naming_nothing_is_not_a_request_to_calibrate(tmp_path: Path) -> None:
    body = {"messages": user(MCQ), "guard": {"calibration": None}}
    out, up = handle(tmp_path, body, auto_detect=False)
    assert "guard" not in out
    assert len(up.bodies) == 1
