"""Where the text sits in the Responses API's bodies and stream events.

A request: its ``instructions``; its ``input``, a string or a list of strings and items (each
item's content as a string or text and refusal parts, a tool call's arguments or custom input, a
tool's output as a string or ``input_text`` parts, reasoning summaries); its tools' descriptions
(an MCP server's too) and every string of their parameter schemas; a prompt template's variables
(strings or ``input_text`` parts); a JSON schema's description. An answer: each output item read
the same way, plus the code a code interpreter ran and its logs; a rewritten ``output_text``
loses its ``logprobs``. Every other string of an item that is not a message or reasoning (a
shell call's commands, a patch's diff, a search's results, ...) is read too, as text beside the
answer; ids, states and base64 are not text.

A stream: each delta event adds to one text of its output item (text, refusal, arguments, custom
tool input, reasoning and its summary, code, audio transcript). Events that carry a whole text
instead (``response.output_text.done``, ``response.output_item.done``, ``response.completed``
and the like) are each checked as texts of their own, so none goes out unread: they are held
until the policies have read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from guard.endpoint_fields import (
    Aside,
    Delta,
    Slot,
    arguments,
    as_dict,
    as_list,
    asides,
    citations,
    parts,
    setter,
    strings_in,
    texts,
)


def responses_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    yield from texts(body, "instructions", "input")
    yield from input_items(body.get("input"))
    variables = as_dict(as_dict(body.get("prompt")).get("variables"))
    for key, value in list(variables.items()):  # a map: each taken as it is iterated
        if isinstance(value, str):
            yield value, setter(variables, key)
        else:
            yield from texts(value, "text")
    for tool in as_list(body.get("tools")):
        yield from texts(tool, "description", "server_description")  # an MCP server's too
        yield from strings_in(tool, "parameters")
    text_format = as_dict(as_dict(body.get("text")).get("format"))
    yield from texts(text_format, "description")
    yield from strings_in(text_format, "schema")


def input_items(value: Any) -> Iterator[Slot]:
    """The texts of a list of input items (strings, messages, tool calls and their outputs):
    a Responses ``input``, a conversation's ``items``."""
    items = as_list(value)
    for i, item in enumerate(items):
        if isinstance(item, str):
            yield item, setter(items, i)
        yield from _item(item)


def responses_answer(response: dict[str, Any]) -> Iterator[Slot]:
    for item in as_list(response.get("output")):
        yield from _item(item)
    yield from texts(response, "output_text")  # a convenience some servers fill in


def _item(item: Any) -> Iterator[Slot]:
    """The texts of one input or output item (a message, a tool call or its output, ...)."""
    if not isinstance(item, dict):
        return
    reasoning = item.get("type") == "reasoning"
    for text, put in texts(item, "content"):
        yield (Aside(text) if reasoning else text), put
    for text, put in parts(item.get("content"), empty=[]):
        yield (Aside(text) if reasoning else text), put
    for part in as_list(item.get("summary")):  # reasoning summaries
        yield from asides(part, "text")
    yield from arguments(item, "arguments")  # a function or MCP call
    yield from arguments(item, "input")  # a custom tool call
    yield from asides(item, "output", "code", "error")  # a tool's output, a code interpreter's
    yield from parts(item.get("output"))  # a tool's output as input_text parts
    for out in as_list(item.get("outputs")):
        yield from asides(out, "logs")
    yield from _rest(item)


# What _item reads itself, as paths into an item ("*": any index); _rest reads every other
# string of an item other than a message or reasoning: a shell call's commands and its output,
# a patch's diff, the text a computer call types, a search's queries and results, ...
_READ = {("content",), ("content", "*", "text"), ("content", "*", "refusal"),
         ("summary", "*", "text"), ("arguments",), ("input",), ("output",), ("code",),
         ("error",), ("output", "*", "text"), ("output", "*", "refusal"),
         ("outputs", "*", "logs")}  # fmt: skip
# Not text: names of things, states, and base64 (images, files, encrypted reasoning).
_OPAQUE = {"id", "type", "status", "role", "created_by", "encrypted_content", "image_url",
           "file_data", "file_url", "logprobs", "partial_image_b64"}  # fmt: skip


def _rest(item: dict[str, Any]) -> Iterator[Slot]:
    if item.get("type") in (None, "message", "reasoning"):  # read whole by _item
        return
    skip = {"result"} if item.get("type") == "image_generation_call" else set()
    yield from _strings(item, (), skip)


def _strings(value: Any, path: tuple[str, ...], skip: set[str]) -> Iterator[Slot]:
    pairs = value.items() if isinstance(value, dict) else enumerate(as_list(value))
    for key, v in list(pairs):
        if isinstance(key, str) and (
            key in _OPAQUE or key in skip or key.endswith(("_id", "_ids"))
        ):
            continue
        at = (*path, key if isinstance(key, str) else "*")
        if isinstance(v, str) and at not in _READ:
            yield Aside(v), setter(value, key)
        elif isinstance(v, dict | list):
            yield from _strings(v, at, set())


# Delta events: which text of their output item each adds to (None: the item's content text).
_STREAMED = {
    "response.output_text.delta": "",
    "response.refusal.delta": ".refusal",
    "response.function_call_arguments.delta": ".arguments",
    "response.mcp_call_arguments.delta": ".arguments",
    "response.custom_tool_call_input.delta": ".input",
    "response.audio.transcript.delta": ".transcript",
}
_ASIDE = {  # delta events whose text is beside the answer
    "response.reasoning_text.delta": ".reasoning",
    "response.reasoning_summary_text.delta": ".summary",
    "response.code_interpreter_call_code.delta": ".code",
}
_UNREAD = {"response.audio.delta"}  # base64 audio, not text
# Events that carry whole texts: where the texts sit in them.
_WHOLE: dict[str, Callable[[dict[str, Any]], Iterator[Slot]]] = {
    "text": lambda e: texts(e, "text"),  # output_text.done, reasoning_*_text.done
    "refusal": lambda e: texts(e, "refusal"),
    "arguments": lambda e: arguments(e, "arguments"),
    "input": lambda e: arguments(e, "input"),
    "code": lambda e: asides(e, "code"),
    "part": lambda e: parts([e.get("part")]),  # content_part.*, reasoning_summary_part.*
    "annotation": lambda e: citations([e.get("annotation")]),  # output_text.annotation.added
    "item": lambda e: _item(e.get("item")),  # output_item.*
    "response": lambda e: responses_answer(as_dict(e.get("response"))),  # completed, ...
}


def responses_deltas(event: dict[str, Any]) -> Iterator[Delta]:
    kind = str(event.get("type"))
    index = event.get("output_index", 0)
    index = index if isinstance(index, int) else 0
    aside = kind in _ASIDE or "reasoning" in kind or "code_interpreter" in kind
    part = _STREAMED.get(kind, _ASIDE.get(kind))
    if part is None and kind.endswith(".delta") and kind not in _UNREAD:
        part = f".{kind}"  # a delta of a text this module does not know yet: read it too
    if part is not None:
        delta = event.get("delta")
        if isinstance(delta, str):
            sub = event.get("summary_index", event.get("content_index"))
            key = f"{index}{part}" + (f"[{sub}]" if part and isinstance(sub, int) else "")
            yield (key if part else index), (Aside(delta) if aside else delta)
        return
    # Not a delta: each whole text in it is a text of its own, read before the event goes out.
    seen = 0
    for field, read in _WHOLE.items():
        if field in event:
            for text, _ in read(event):
                if text:
                    # Its own key, and a leading newline: it runs into no other text.
                    whole = "\n" + text
                    yield (
                        f"{kind}#{event.get('sequence_number')}.{seen}",
                        Aside(whole) if aside or isinstance(text, Aside) else whole,
                    )
                    seen += 1
