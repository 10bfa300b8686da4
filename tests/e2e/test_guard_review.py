"""Findings of the guard review (policies and the flag log), each where it shows: on the wire
through a real calguard, or through a wrapped client."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessage
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

import guard
from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.store import SQLiteStore
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread
from tests.e2e.scripted_upstream import Script, create_scripted_upstream
from tests.e2e.test_fields_read import BLOCK, RESP, Canned, ev, response
from tests.e2e.test_policies_proxy import scripted

UPSTREAM_KEY = "sk-upstream-REVIEW-0123456789abcdef"
MAIL, TICKET = "bob@example.com", "code-1234"
REGEX = {"type": "regex", "params": {"patterns": [r"\bcode-\d{4}\b"]}, "action": "redact"}
PII = {"type": "pii", "action": "redact"}
ROUTES: dict[str, list[dict[str, Any]]] = {
    # two redactions of the answer, the first one's verdict made before the second's
    "answer": [{**PII, "on": "response"}, {**REGEX, "on": "response"}],
    # a redaction of the prompt on a route that leaves PII to pass
    "prompt": [{**REGEX, "on": "prompt"}],
    "json": [
        {
            "type": "json_schema",
            "params": {"schema": {"type": "object", "required": ["answer"]}},
            "action": "block",
            "on": "response",
        }
    ],
}


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, SQLiteStore]]:
    state = FakeUpstreamState(SimulatedResponder(), text_responder=scripted)
    with serve_in_thread(create_fake_upstream(state)) as up:
        settings = Settings(
            upstream=f"{up}/v1",
            upstream_key=UPSTREAM_KEY,
            store=f"sqlite:///{tmp_path / 'r.db'}",
            routes={n: RouteConfig(upstream_model="sim", policies=p) for n, p in ROUTES.items()},
            max_attempts=1,
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url, SQLiteStore(tmp_path / "r.db")


def _say(url: str, route: str, text: str, **body: Any) -> httpx.Response:
    messages = [{"role": "user", "content": f"say: {text}"}]
    return httpx.post(
        f"{url}/v1/chat/completions", json={"model": route, "messages": messages, **body}
    )


def test_a_match_a_later_policy_redacts_is_not_in_an_earlier_verdict(
    proxy: tuple[str, SQLiteStore],
) -> None:
    """Redactions chain, so the first redacting verdict's text still held what the second one
    took out, and every verdict goes to the client in guard.flags: the ticket the regex
    redacted from the answer came back there (and into the flag log)."""
    url, store = proxy
    r = _say(url, "answer", f"mail {MAIL} {TICKET}")
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "mail [REDACTED] [REDACTED]"
    assert [f["policy"] for f in r.json()["guard"]["flags"]] == ["pii", "regex"]
    assert TICKET not in r.text
    (rec,) = store.flags()  # its request is the client's prompt, which no policy here reads
    assert TICKET not in json.dumps([rec["verdicts"], rec["response"]])


def test_a_stream_blocked_for_a_redaction_keeps_no_match_in_its_verdicts(
    proxy: tuple[str, SQLiteStore],
) -> None:
    """The same on a stream, where a redaction blocks: the verdicts read at its end."""
    url, store = proxy
    r = _say(url, "answer", f"{MAIL},{TICKET}", stream=True)
    assert "policy_violation" in r.text
    for secret in (TICKET, MAIL):
        assert secret not in r.text
    (rec,) = store.flags()
    stored = json.dumps([rec["verdicts"], rec["response"]])
    assert "[REDACTED]" in stored
    for secret in (TICKET, MAIL):
        assert secret not in stored


def test_a_stream_a_redaction_ended_is_recorded_as_blocked(
    proxy: tuple[str, SQLiteStore],
) -> None:
    """A redaction cannot take back streamed text, so it ends the stream with a
    policy_violation; the record said ``flag`` (a redacting verdict's own action), so a log
    filtered for blocks missed what the client saw blocked."""
    url, store = proxy
    r = _say(url, "answer", f"{MAIL},{TICKET}", stream=True)
    assert "policy_violation" in r.text
    (rec,) = store.flags()
    assert rec["action"] == "block"
    assert "block" in [v["action"] for v in rec["verdicts"]]


def test_the_flag_record_keeps_no_raw_pii_nor_key_in_a_verdict(
    proxy: tuple[str, SQLiteStore],
) -> None:
    """The record's request and response go through the secrets and PII redactions and the key
    scrubber whatever the route's policies do; a redacting verdict's text (the whole prompt
    with the regex's match taken out) did not, so the raw address, and calguard's key, were
    stored in the flag log."""
    url, store = proxy
    r = _say(url, "prompt", f"mail {MAIL} {TICKET} {UPSTREAM_KEY}")
    assert r.status_code == 200
    (rec,) = store.flags()
    assert [v["policy"] for v in rec["verdicts"]] == ["regex"]
    for secret in (MAIL, TICKET, UPSTREAM_KEY):
        assert secret not in json.dumps(rec)


def test_a_streamed_answer_that_fits_its_json_schema_is_not_blocked(
    proxy: tuple[str, SQLiteStore],
) -> None:
    """A blocking json_schema read the stream's start ('{"answer": "so', not JSON) and ended
    every streamed answer there, valid ones too; an invalid one is still blocked, at its end."""
    url, store = proxy
    answer = json.dumps({"answer": "a long enough answer " * 20, "n": 1})
    r = _say(url, "json", answer, stream=True)
    assert r.status_code == 200
    assert "policy_violation" not in r.text
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line[6:].startswith("{")]
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events) == answer
    assert store.flags() == []
    r = _say(url, "json", json.dumps({"other": "a long enough answer " * 20}), stream=True)
    assert "policy_violation" in r.text


def test_an_answer_a_json_schema_blocks_does_not_reach_a_streaming_client(
    proxy: tuple[str, SQLiteStore],
) -> None:
    """A blocking policy that reads only the whole answer has read nothing until its end, so
    nothing goes out before it has: before, all but the last stream_holdback characters of an
    answer that fails its schema reached the client, then the block."""
    url, _ = proxy
    r = _say(url, "json", json.dumps({"other": "a long enough answer " * 20}), stream=True)
    assert "policy_violation" in r.text
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line[6:].startswith("{")]
    said = "".join(c["delta"].get("content", "") for e in events for c in e.get("choices", []))
    assert said == ""


DENY = [{"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block", "on": "prompt"}]
SAID = ChatCompletionMessage(role="assistant", content="the forbidden word")
OUTPUT = ResponseOutputMessage(
    id="msg_1",
    type="message",
    role="assistant",
    status="completed",
    content=[ResponseOutputText(type="output_text", text="the forbidden word", annotations=[])],
)
USER = {"role": "user", "content": "go on"}
PART = {"type": "text", "text": "forbidden"}
INPUT_PART = {"type": "input_text", "text": "forbidden"}
TOOL = {"type": "function", "function": {"name": "f", "description": "forbidden"}}


@pytest.fixture
def wrapped(tmp_path: Path) -> Iterator[tuple[Any, Any, Script]]:
    """(a wrapped client whose route blocks 'forbidden' in prompts, a plain one, the upstream)."""
    script = Script()
    with serve_in_thread(create_scripted_upstream(script)) as url:
        plain = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-x", max_retries=0)
        inner = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-x", max_retries=0)
        client = guard.wrap(
            inner, store=f"sqlite:///{tmp_path / 'w.db'}", route=RouteConfig(policies=DENY)
        )
        yield client, plain, script
        client.close()
        plain.close()


@pytest.mark.parametrize(
    "call",
    [
        # the Responses API's way to continue: the last answer's output items passed back in
        lambda c: c.responses.create(model="m", input=[OUTPUT, USER]),
        lambda c: c.chat.completions.create(model="m", messages=[USER, SAID, USER]),
        lambda c: c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": collections.deque([PART])}]
        ),
        lambda c: c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": (p for p in [PART])}]
        ),
        lambda c: c.responses.create(
            model="m",
            input=[{"role": "user", "content": collections.deque([INPUT_PART])}],
        ),
        lambda c: c.chat.completions.create(
            model="m",
            messages=[USER],
            tools=collections.deque([TOOL]),
        ),
    ],
    ids=["output-items", "chat-message", "deque-parts", "generator", "input-parts", "tools"],
)
def test_what_the_sdk_sends_as_a_list_or_an_object_is_read_in_process(
    wrapped: tuple[Any, Any, Script], call: Callable[[Any], Any]
) -> None:
    """The SDK sends any iterable as a JSON array and a pydantic object (an earlier answer's
    message or output items) as its JSON; the wrapper read only lists and dicts, so the text in
    them reached the model unread (or, a generator, raised a TypeError; a message object was a
    400 the plain client does not give)."""
    client, _, script = wrapped
    with pytest.raises(openai.BadRequestError, match="denylist"):
        call(client)
    assert script.requests == []


def test_an_answer_passed_back_goes_upstream_as_the_plain_client_sends_it(
    wrapped: tuple[Any, Any, Script],
) -> None:
    client, plain, script = wrapped
    said = ChatCompletionMessage(role="assistant", content="fine")
    items = OUTPUT.model_copy(
        update={"content": [ResponseOutputText(type="output_text", text="ok", annotations=[])]}
    )
    for c in (plain, client):
        c.chat.completions.create(model="m", messages=iter([USER, said, USER]))
        c.responses.create(model="m", input=[items, USER])
    bodies = [r["body"] for r in script.requests]
    assert bodies[:2] == bodies[2:]


# -- Responses items whose text was not read -------------------------------------------------------

SHELL = {"type": "shell_call", "id": "sh", "call_id": "c1", "status": "completed",
         "action": {"commands": ["echo ok", "echo forbidden"]}}  # fmt: skip
ITEMS = [
    SHELL,
    {"type": "local_shell_call", "id": "ls", "call_id": "c2", "status": "completed",
     "action": {"type": "exec", "command": ["echo", "forbidden"], "env": {}}},
    {"type": "apply_patch_call", "id": "ap", "call_id": "c3", "status": "completed",
     "operation": {"type": "create_file", "path": "a.txt", "diff": "+forbidden\n"}},
    {"type": "computer_call", "id": "cc", "call_id": "c4", "status": "completed",
     "pending_safety_checks": [], "action": {"type": "type", "text": "forbidden"}},
    {"type": "file_search_call", "id": "fs", "status": "completed", "queries": ["q"],
     "results": [{"file_id": "f", "text": "the forbidden passage", "score": 0.9}]},
    {"type": "web_search_call", "id": "ws", "status": "completed",
     "action": {"type": "search", "query": "forbidden things"}},
    {"type": "mcp_list_tools", "id": "ml", "server_label": "s",
     "tools": [{"name": "t", "description": "does forbidden things", "input_schema": {}}]},
    {"type": "shell_call_output", "id": "so", "call_id": "c1", "status": "completed",
     "output": [{"stdout": "forbidden\n", "stderr": "", "outcome": {"type": "timeout"}}]},
]  # fmt: skip
NAMES = ["shell", "local-shell", "patch", "computer", "file-search", "web-search", "mcp-tools",
         "shell-output"]  # fmt: skip


@pytest.fixture
def canned(tmp_path: Path) -> Iterator[tuple[Canned, str, SQLiteStore]]:
    up = Canned()
    with serve_in_thread(up.app) as upstream:
        settings = Settings(
            upstream=f"{upstream}/v1",
            store=f"sqlite:///{tmp_path / 'c.db'}",
            stream_holdback=16,
            max_attempts=1,
            routes={"m": RouteConfig(upstream_model="m", policies=BLOCK)},
        )
        with serve_in_thread(create_app(settings)) as url:
            yield up, url, SQLiteStore(tmp_path / "c.db")


@pytest.mark.parametrize("item", ITEMS, ids=NAMES)
def test_a_blocked_word_in_any_responses_item_is_read(
    canned: tuple[Canned, str, SQLiteStore], item: dict[str, Any]
) -> None:
    """Responses items other than messages and the tool calls the reader knew: a shell call's
    commands (which the client runs), a patch's diff, the text a computer call types, a file
    search's results, an MCP server's tool descriptions, a shell's output; the README says
    every output item is read. In an answer (whole and streamed) and passed back in a request,
    'forbidden' went through."""
    up, url, _ = canned
    up.body = response(item)
    r = httpx.post(f"{url}{RESP}", json={"model": "m", "input": "hi"})
    assert r.status_code == 400, r.text
    done = {"type": "response.output_item.done", "sequence_number": 1, "output_index": 0,
            "item": item}  # fmt: skip
    up.sse = [ev(done), b"data: [DONE]\n\n"]
    r = httpx.post(f"{url}{RESP}", json={"model": "m", "input": "hi", "stream": True})
    assert '"error"' in r.text
    assert "forbidden" not in r.text.split('"error"')[0]
    up.sse, n = None, len(up.requests)
    r = httpx.post(
        f"{url}{RESP}", json={"model": "m", "input": [item, {"role": "user", "content": "go"}]}
    )
    assert r.status_code == 400, r.text
    assert len(up.requests) == n


def test_what_a_responses_item_holds_beside_text_is_not_read(
    canned: tuple[Canned, str, SQLiteStore],
) -> None:
    """Ids, states and base64 (an image generation's result, encrypted reasoning) are not text:
    an id full of digits is no phone number, and nothing of it is redacted."""
    up, url, store = canned
    image = {"type": "image_generation_call", "id": "ig_" + "1234567890" * 3, "status": "completed",
             "result": "iVBORw0KGgo" + "5551234567" * 5}  # fmt: skip
    reasoning = {"type": "reasoning", "id": "rs", "summary": [],
                 "encrypted_content": "gAAAA" + "4155550123" * 5}  # fmt: skip
    up.body = response(image, reasoning)
    r = httpx.post(f"{url}{RESP}", json={"model": "m", "input": "hi"})
    assert r.status_code == 200
    assert r.json() == up.body
    assert store.flags() == []
    up.body = response({**SHELL, "action": {"commands": ["mail bob@example.com"]}})
    r = httpx.post(f"{url}{RESP}", json={"model": "m", "input": "hi"})
    assert r.json()["output"][0]["action"]["commands"] == ["mail [REDACTED]"]
