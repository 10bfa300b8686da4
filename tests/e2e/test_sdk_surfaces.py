"""``calguard serve`` as a drop-in for the openai SDK's less common surfaces, differentially: each
call made once to the scripted upstream itself (:mod:`tests.e2e.scripted_upstream`) and once
through calguard in front of it, with no policies and with flag-only ones (``pii`` and
``secrets`` set to flag, on both sides, which find nothing here). The client gets the same
objects, status, headers, request id and stream events in the same order, and the upstream the
same requests (path, query, body, the client's headers). ``guard.wrap``'s side of this is
``test_wrap_dropin.py``."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.scripted_upstream import Script, create_scripted_upstream
from tests.e2e.serve_process import fake_upstream_served

MESSAGES: Any = [{"role": "user", "content": "hi"}]
FLAG = [{"type": "pii", "action": "flag"}, {"type": "secrets", "action": "flag"}]
# Framing, each server's own, and calguard's id: the rest of an answer's headers must match.
OWN = {"date", "server", "content-length", "transfer-encoding", "x-calguard-request-id"}
SENT_OWN = {"host", "accept-encoding", "connection", "content-length"}  # each hop frames its own
TOOLS: Any = [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}]


class Answer(BaseModel):
    a: int


@dataclass
class Stack:
    script: Script
    direct: str
    plain: str  # calguard, no policies
    flagging: str  # calguard, flag-only policies


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    script = Script()
    db = tmp_path_factory.mktemp("surfaces")
    with serve_in_thread(create_scripted_upstream(script)) as up:

        def calguard(name: str, **kw: Any) -> Any:
            s = Settings(upstream=f"{up}/v1", upstream_key="sk-up", max_attempts=1,
                         store=f"sqlite:///{db / name}.db", **kw)  # fmt: skip
            return serve_in_thread(create_app(s))

        with (
            calguard("plain") as plain,
            calguard("flagging", default_route=RouteConfig(policies=FLAG)) as flagging,
        ):
            yield Stack(script, up, plain, flagging)


def _headers(h: Any) -> dict[str, str]:
    return {k: v for k, v in h.items() if k not in OWN}


def _sdk(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="sk-up", max_retries=0)


def raw_chat(c: openai.OpenAI) -> Any:
    r = c.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    return r.status_code, _headers(r.headers), r.request_id, r.retries_taken, r.parse()


def raw_chat_stream(c: openai.OpenAI) -> Any:
    r = c.chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    return r.status_code, _headers(r.headers), r.request_id, list(r.parse())


def streaming_chat(c: openai.OpenAI) -> Any:
    with c.chat.completions.with_streaming_response.create(
        model="m", messages=MESSAGES, stream=True
    ) as r:
        return r.status_code, _headers(r.headers), list(r.iter_lines())  # [DONE] included


def streaming_responses(c: openai.OpenAI) -> Any:
    with c.responses.with_streaming_response.create(model="m", input="hi", stream=True) as r:
        return r.status_code, _headers(r.headers), list(r.iter_lines())


def streaming_embeddings(c: openai.OpenAI) -> Any:
    with c.embeddings.with_streaming_response.create(model="e", input="hi") as r:
        return r.status_code, _headers(r.headers), r.read()


def raw_responses(c: openai.OpenAI) -> Any:
    r = c.responses.with_raw_response.create(model="m", input="hi")
    return r.status_code, _headers(r.headers), r.request_id, r.parse()


def raw_embeddings(c: openai.OpenAI) -> Any:
    r = c.embeddings.with_raw_response.create(model="e", input=["a", "bcd"])
    return r.status_code, _headers(r.headers), r.parse()


def parse(c: openai.OpenAI) -> Any:
    return c.chat.completions.parse(model="json", messages=MESSAGES, response_format=Answer)


def chat_stream_helper(c: openai.OpenAI) -> Any:
    with c.chat.completions.stream(
        model="m", messages=MESSAGES, stream_options={"include_usage": True}
    ) as s:
        return [e.type for e in s], s.get_final_completion()


def chat_stream_helper_tools(c: openai.OpenAI) -> Any:
    with c.chat.completions.stream(model="tools", messages=MESSAGES, tools=TOOLS) as s:
        return [e.type for e in s], s.get_final_completion()


def responses_stream_helper(c: openai.OpenAI) -> Any:
    with c.responses.stream(model="m", input="hi") as s:
        return [e.type for e in s], s.get_final_response()


def responses_tool_output(c: openai.OpenAI) -> Any:
    tool: Any = {"type": "function", "name": "get", "parameters": {}, "strict": False}
    output: Any = {"type": "function_call_output", "call_id": "call_1", "output": "42"}
    return c.responses.create(
        model="m", input=[output], previous_response_id="resp_0", tools=[tool]
    )


def embeddings_base64(c: openai.OpenAI) -> Any:
    return c.embeddings.create(model="e", input="abc", encoding_format="base64")


def embeddings_default(c: openai.OpenAI) -> Any:
    return c.embeddings.create(model="e", input=["abc", "de"])  # asks base64, decodes


def models(c: openai.OpenAI) -> Any:
    return list(c.models.list()), c.models.retrieve("a")


def file_upload(c: openai.OpenAI) -> Any:
    f = ("x.jsonl", io.BytesIO(b'{"a": 1}\n'), "application/jsonl")
    return c.files.create(file=f, purpose="batch")


def transcription(c: openai.OpenAI) -> Any:
    f = ("a.wav", io.BytesIO(b"RIFF\x00\x00\x00\x00WAVE"), "audio/wav")
    return c.audio.transcriptions.create(model="whisper-1", file=f)


def image(c: openai.OpenAI) -> Any:
    return c.images.generate(model="dall-e-3", prompt="a cat")


def request_options(c: openai.OpenAI) -> Any:
    return c.chat.completions.create(
        model="m",
        messages=MESSAGES,
        extra_headers={"X-Custom": "1", "Idempotency-Key": "idem-1"},
        extra_query={"api-version": "2024-01-01", "x": "y z"},
        extra_body={"foo": {"bar": [1, 2]}, "seed": 3},
        timeout=30,
    )


def completions_stream(c: openai.OpenAI) -> Any:
    return list(c.completions.create(model="m", prompt="hi", stream=True))


async def _async_calls(base: str) -> Any:
    async with openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="sk-up", max_retries=0) as c:
        out: list[Any] = [await c.chat.completions.create(model="m", messages=MESSAGES)]
        out.append([x async for x in await c.chat.completions.create(
            model="m", messages=MESSAGES, stream=True)])  # fmt: skip
        async with c.chat.completions.stream(model="m", messages=MESSAGES) as s:
            out += [[e.type async for e in s], await s.get_final_completion()]
        async with c.responses.stream(model="m", input="hi") as r:
            out += [[e.type async for e in r], await r.get_final_response()]
        out.append(await c.embeddings.create(model="e", input="abc"))
        out.append(await c.chat.completions.parse(
            model="json", messages=MESSAGES, response_format=Answer))  # fmt: skip
        return out


def async_client(base: str) -> Any:
    return asyncio.run(_async_calls(base))


CALLS: list[Callable[[openai.OpenAI], Any]] = [
    raw_chat, raw_chat_stream, streaming_chat, streaming_responses, streaming_embeddings,
    raw_responses, raw_embeddings, parse, chat_stream_helper, chat_stream_helper_tools,
    responses_stream_helper, responses_tool_output, embeddings_base64, embeddings_default,
    models, file_upload, transcription, image, request_options, completions_stream,
]  # fmt: skip


EVERY: list[Callable[..., Any]] = [*CALLS, async_client]


def _plain(value: Any) -> Any:
    """``value`` as JSON, the things that differ by design masked: each answer's
    ``x-request-id`` counts the upstream's requests, a multipart boundary is random."""

    def default(x: Any) -> Any:
        if hasattr(x, "model_dump"):
            return x.model_dump(mode="json", warnings=False)
        return x.decode("latin-1") if isinstance(x, bytes) else str(x)

    text = json.dumps(value, default=default, sort_keys=True)
    return json.loads(re.sub(r"[0-9a-f]{32}", "B", re.sub(r"req_[0-9]+", "req_N", text)))


def _sent(requests: list[dict[str, Any]]) -> Any:
    return _plain(
        [
            {**r, "headers": {k: v for k, v in r["headers"].items() if k not in SENT_OWN}}
            for r in requests
        ]
    )


def _both(stack: Stack, via: str, call: Callable[[str], Any]) -> list[tuple[Any, Any]]:
    out = []
    for base in (stack.direct, via):
        n = len(stack.script.requests)
        out.append((_plain(call(base)), _sent(stack.script.requests[n:])))
    return out


def _with_sdk(call: Callable[[openai.OpenAI], Any]) -> Callable[[str], Any]:
    def run(base: str) -> Any:
        with _sdk(base) as c:
            return call(c)

    return run


@pytest.mark.parametrize("mode", ["no policies", "flag only"])
@pytest.mark.parametrize(
    "call", [*CALLS, async_client], ids=[c.__name__ for c in [*CALLS, async_client]]
)
def test_an_sdk_surface_through_calguard_is_as_direct(
    stack: Stack, call: Callable[..., Any], mode: str
) -> None:
    via = stack.plain if mode == "no policies" else stack.flagging
    run = call if call is async_client else _with_sdk(call)
    (direct, sent_direct), (through, sent_through) = _both(stack, via, run)
    assert through == direct
    assert sent_through == sent_direct
    assert sent_direct  # the call reached the upstream


def test_a_stream_names_its_prompts_flags_where_the_answer_is_checked_too(stack: Stack) -> None:
    """A non-stream answer to a flagged prompt says ``x-calguard-flags``, and so does a stream
    where only the prompt is checked. Before: a stream on a route whose policies also read the
    answer said nothing, though the prompt's verdicts are known before it starts."""
    mail: Any = [{"role": "user", "content": "mail bob@example.com"}]
    with _sdk(stack.flagging) as c:
        whole = c.chat.completions.with_raw_response.create(model="m", messages=mail)
        streamed = c.chat.completions.with_raw_response.create(
            model="m", messages=mail, stream=True
        )
        events = list(streamed.parse())
    assert whole.headers["x-calguard-flags"] == "pii"
    assert streamed.headers["x-calguard-flags"] == "pii"
    assert "".join(e.choices[0].delta.content or "" for e in events if e.choices) == "hello"


def test_the_stream_helpers_work_on_calguard_serve_fake_upstream(tmp_path: Path) -> None:
    """``calguard serve --fake-upstream`` (README, "Try it without a key"), as a user points the
    SDK at it. Before: ``responses.stream`` raised RuntimeError "Expected to have received
    `response.created` before `response.output_text.delta`" (the fake sent deltas and
    ``response.completed`` only), and a chat stream ignored ``include_usage``."""
    with fake_upstream_served(tmp_path) as url, _sdk(url) as c:
        with c.responses.stream(model="any", input="hi") as s:
            kinds = [e.type for e in s]
            final = s.get_final_response()
        with c.chat.completions.stream(
            model="any", messages=MESSAGES, stream_options={"include_usage": True}
        ) as chat:
            completion = chat.get_final_completion()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert final.output_text == "echo: hi"
    assert final.usage is not None
    assert completion.choices[0].message.content == "echo: hi"
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0


UNREAD = [
    lambda c: c.embeddings.with_raw_response.create(
        model="e", input=[[1, 2, 3]], encoding_format="float"
    ),
    lambda c: c.completions.with_raw_response.create(model="m", prompt=[1, 2, 3]),
    lambda c: c.chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES, extra_body={"extra_body": {"x": 1}}
    ),
]


@pytest.mark.parametrize(
    "call", UNREAD, ids=["embeddings token IDs", "completion token IDs", "an extra_body field"]
)
def test_a_prompt_flag_only_policies_cannot_read_goes_as_it_came_flagged(
    stack: Stack, call: Callable[[openai.OpenAI], Any]
) -> None:
    """LangChain's ``OpenAIEmbeddings`` sends token IDs by default (it counts tokens with
    tiktoken). Before: a 400 ``unreadable_prompt``, though policies set to flag change nothing.
    A route whose policies may block or redact still refuses it (``test_bypass.py``)."""
    answers = []
    for base in (stack.direct, stack.flagging):
        n = len(stack.script.requests)
        with _sdk(base) as c:
            r = call(c)
            answers.append((r, r.parse().model_dump(mode="json"), _sent(stack.script.requests[n:])))
    (_, direct, sent_direct), (raw, through, sent_through) = answers
    guard = through.pop("guard")
    assert through == direct
    assert sent_through == sent_direct
    assert raw.headers["x-calguard-flags"] == "pii,secrets"
    assert [f["policy"] for f in guard["flags"]] == ["pii", "secrets"]
    assert all(f["reason"].startswith("not read: ") for f in guard["flags"])
