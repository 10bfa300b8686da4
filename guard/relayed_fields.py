"""The relayed paths whose JSON bodies hold text a model reads, and where it sits in each.

calguard serves the text endpoints itself (:mod:`guard.endpoints`); every other path under
``/v1`` is relayed (:mod:`guard.relay`). Some of those take text a model reads later, or at
once, without a text endpoint: a conversation's items (read by a Responses call naming the
conversation), an Assistants thread's messages, a run's instructions and extra messages, an
assistant's instructions and tools, the outputs of a run's tool calls, an image prompt, the
text of speech, a Responses compaction's input, a Realtime session's instructions and
tools; and the generating endpoints of other APIs that OpenAI-compatible servers serve
beside them: Anthropic's Messages API (``/v1/messages``: vLLM, SGLang, LiteLLM's proxy)
and the legacy edits (``/v1/edits``: LocalAI), whose answers are not read. Each is listed
here as (method, path pattern) -> an :class:`~guard.endpoints.Endpoint` whose prompt
readers are the text endpoints' own pieces, so :meth:`guard.checks.Checks.prompt` reads and
rewrites them as it reads a chat request. Not listed, and so relayed unread: multipart bodies
(an image edit's prompt, a video's, an audio transcription's), files and batches (a Batch API
input file), evals, fine-tuning, uploads, vector stores, moderations (read by no generating
model), and every update that only sets metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from guard.endpoint_fields import Slot, as_dict, as_list, content, parts, strings_in, texts
from guard.endpoints import Endpoint, chat_tools
from guard.responses_fields import input_items, responses_prompt

Reader = Callable[[dict[str, Any]], Iterator[Slot]]


def _conversation_items(body: dict[str, Any]) -> Iterator[Slot]:
    return input_items(body.get("items"))  # Responses input items


def _messages(value: Any) -> Iterator[Slot]:
    """Each Assistants message's content: a string, or text parts."""
    for message in as_list(value):
        yield from content(message)


def _thread(body: dict[str, Any]) -> Iterator[Slot]:
    return _messages(body.get("messages"))


def _run(body: dict[str, Any]) -> Iterator[Slot]:
    yield from texts(body, "instructions", "additional_instructions")
    yield from _messages(body.get("additional_messages"))
    yield from chat_tools(body)


def _thread_and_run(body: dict[str, Any]) -> Iterator[Slot]:
    yield from _run(body)
    yield from _thread(as_dict(body.get("thread")))


def _tool_outputs(body: dict[str, Any]) -> Iterator[Slot]:
    for out in as_list(body.get("tool_outputs")):
        yield from texts(out, "output")


def _assistant(body: dict[str, Any]) -> Iterator[Slot]:
    yield from texts(body, "instructions", "description")
    yield from chat_tools(body)


def _image(body: dict[str, Any]) -> Iterator[Slot]:
    return texts(body, "prompt")


def _speech(body: dict[str, Any]) -> Iterator[Slot]:
    return texts(body, "input", "instructions")


def _realtime_secret(body: dict[str, Any]) -> Iterator[Slot]:
    return responses_prompt(as_dict(body.get("session")))  # a session as a Responses request


def _anthropic(body: dict[str, Any]) -> Iterator[Slot]:
    """An Anthropic Messages request: its system prompt (a string or text blocks), each
    message's text, thinking, tool results and tool inputs, and its tools."""
    yield from texts(body, "system")
    yield from parts(body.get("system"))
    for message in as_list(body.get("messages")):
        yield from content(message)  # a string, or text and thinking blocks
        for block in as_list(as_dict(message).get("content")):
            yield from content(block)  # a tool_result's content: a string or text blocks
            yield from strings_in(block, "input")  # a tool_use's input, shown to the model
    for tool in as_list(body.get("tools")):
        yield from texts(tool, "description")
        yield from strings_in(tool, "input_schema")


def _edit(body: dict[str, Any]) -> Iterator[Slot]:
    return texts(body, "input", "instruction")


def _nothing(_: dict[str, Any]) -> Iterator[Any]:
    return iter(())


def _relayed(path: str, reader: Reader) -> Endpoint:
    return Endpoint(f"relayed {path}", path, reader, _nothing, _nothing)


# (method, path segments under /v1: "*" is any one segment) -> where the text is
READ: tuple[tuple[str, tuple[str, ...], Endpoint], ...] = (
    ("POST", ("conversations",), _relayed("/conversations", _conversation_items)),
    ("POST", ("conversations", "*", "items"), _relayed("/conversations/{id}/items",
                                                       _conversation_items)),
    ("POST", ("threads",), _relayed("/threads", _thread)),
    ("POST", ("threads", "runs"), _relayed("/threads/runs", _thread_and_run)),
    ("POST", ("threads", "*", "messages"), _relayed("/threads/{id}/messages", content)),
    ("POST", ("threads", "*", "runs"), _relayed("/threads/{id}/runs", _run)),
    ("POST", ("threads", "*", "runs", "*", "submit_tool_outputs"),
     _relayed("/threads/{id}/runs/{id}/submit_tool_outputs", _tool_outputs)),
    ("POST", ("assistants",), _relayed("/assistants", _assistant)),
    ("POST", ("assistants", "*"), _relayed("/assistants/{id}", _assistant)),
    ("POST", ("images", "generations"), _relayed("/images/generations", _image)),
    ("POST", ("audio", "speech"), _relayed("/audio/speech", _speech)),
    ("POST", ("responses", "compact"), _relayed("/responses/compact", responses_prompt)),
    # a Realtime session's instructions, prompt variables and tools (its WebSocket is the
    # provider's: what the session is told is set here)
    ("POST", ("realtime", "client_secrets"), _relayed("/realtime/client_secrets",
                                                      _realtime_secret)),
    ("POST", ("realtime", "sessions"), _relayed("/realtime/sessions", responses_prompt)),
    ("POST", ("realtime", "calls", "*", "accept"), _relayed("/realtime/calls/{id}/accept",
                                                            responses_prompt)),
    ("POST", ("messages",), _relayed("/messages", _anthropic)),
    ("POST", ("edits",), _relayed("/edits", _edit)),
)  # fmt: skip


def read_at(method: str, path: str) -> Endpoint | None:
    """Where the text sits in a relayed body (``path`` under ``/v1``, without its leading
    ``/``), if its path holds text a model reads. Matched as :func:`guard.relay.
    check_relayed_path` reads a path: any case, each segment without its ``;`` parameters
    (an upstream that routes so must not find ``Threads`` or ``threads;x`` unread)."""
    steps = tuple(s.split(";", 1)[0] for s in path.lower().split("/"))
    return next(
        (
            endpoint
            for verb, pattern, endpoint in READ
            if verb == method.upper()
            and len(pattern) == len(steps)
            and all(p in ("*", s) for p, s in zip(pattern, steps, strict=True))
        ),
        None,
    )
