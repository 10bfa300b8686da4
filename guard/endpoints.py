"""The text endpoints calguard serves, and where the text sits in each one's bodies.

Policies read and rewrite text; this module is the one place that knows where it is: every
message of a chat request (string content or text parts, a name, earlier tool calls' arguments),
tools' descriptions, a predicted output, a completion's ``prompt`` and ``suffix``, a Responses
input (a prompt given as token IDs is not text: where a route checks prompts, such a request is
refused rather than passed unread); each choice of an answer (content, refusal, tool and
function call arguments), each choice's deltas in a stream. A choice whose text is rewritten
loses its ``logprobs``: their tokens would spell the original.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# A text in a body, and how to put a rewritten one back.
Slot = tuple[str, Callable[[str], None]]


def _setter(container: Any, key: Any) -> Callable[[str], None]:
    def put(text: str) -> None:
        container[key] = text

    return put


def _dropping_logprobs(choice: Any, container: Any, key: Any) -> Callable[[str], None]:
    def put(text: str) -> None:
        container[key] = text
        if isinstance(choice, dict) and choice.get("logprobs") is not None:
            choice["logprobs"] = None

    return put


def _list(value: Any) -> list[Any]:
    """A field that should be a list, as one (anything else holds nothing to read: a malformed
    request is the upstream's to refuse, a malformed answer is read as empty)."""
    return value if isinstance(value, list) else []


def _texts(obj: Any, *keys: str) -> Iterator[Slot]:
    """``obj[key]`` for each key whose value is a string."""
    if isinstance(obj, dict):
        for key in keys:
            if isinstance(obj.get(key), str):
                yield obj[key], _setter(obj, key)


def _chat_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    for m in _list(body.get("messages")):
        if not isinstance(m, dict):
            continue
        yield from _content(m)
        yield from _texts(m, "name")
        for _, fn in _tool_arguments(m.get("tool_calls")):
            yield fn["arguments"], _setter(fn, "arguments")
        yield from _texts(m.get("function_call"), "arguments")
    prediction = body.get("prediction")
    if isinstance(prediction, dict):
        yield from _content(prediction)
    for tool in _list(body.get("tools")):
        yield from _texts(tool.get("function") if isinstance(tool, dict) else None, "description")


def _content(message: dict[str, Any]) -> Iterator[Slot]:
    """A message's text: its string content, or each text part of its content list."""
    content = message.get("content")
    if isinstance(content, str):
        yield content, _setter(message, "content")
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"], _setter(part, "text")


def _strings(body: dict[str, Any], field: str) -> Iterator[Slot]:
    """A field that is a string or a list of strings (a prompt, an embeddings input)."""
    value = body.get(field)
    if isinstance(value, str):
        yield value, _setter(body, field)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                yield v, _setter(value, i)


def _unreadable(value: Any) -> bool:
    """A prompt or input that is not text policies can read: token IDs (ints, or numbers an
    upstream may take for them: ``3.0``, ``"3"`` in a nested list), token-ID lists, or any
    other shape than a string or a list of strings (nothing at all is nothing to read)."""
    if value is None or isinstance(value, str):
        return False
    return not (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _completion_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    yield from _strings(body, "prompt")
    yield from _texts(body, "suffix")


def _tool_arguments(calls: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, function) of each tool call whose arguments are a string."""
    for i, call in enumerate(calls if isinstance(calls, list) else []):
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
            index = call.get("index", i)
            yield (index if isinstance(index, int) else i), fn


def _chat_answer(choice: dict[str, Any]) -> Iterator[Slot]:
    message = choice.get("message")
    if not isinstance(message, dict):
        return
    for key in ("content", "refusal"):
        if isinstance(message.get(key), str):
            yield message[key], _dropping_logprobs(choice, message, key)
    for _, fn in _tool_arguments(message.get("tool_calls")):  # a tool call's arguments are text
        yield fn["arguments"], _setter(fn, "arguments")
    yield from _texts(message.get("function_call"), "arguments")


def _completion_answer(choice: dict[str, Any]) -> Iterator[Slot]:
    if isinstance(choice.get("text"), str):
        yield choice["text"], _dropping_logprobs(choice, choice, "text")


def _chat_delta(choice: dict[str, Any]) -> Iterator[tuple[str, str]]:
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return
    content = delta.get("content")
    yield "", content if isinstance(content, str) else ""
    if isinstance(delta.get("refusal"), str):
        yield ".refusal", delta["refusal"]
    for i, fn in _tool_arguments(delta.get("tool_calls")):
        yield f".tool_calls[{i}]", fn["arguments"]
    for text, _ in _texts(delta.get("function_call"), "arguments"):
        yield ".function_call", text


def _completion_delta(choice: dict[str, Any]) -> Iterator[tuple[str, str]]:
    text = choice.get("text")
    yield "", text if isinstance(text, str) else ""


def _responses_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    if isinstance(body.get("instructions"), str):
        yield body["instructions"], _setter(body, "instructions")
    items = body.get("input")
    if isinstance(items, str):
        yield items, _setter(body, "input")
        return
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        yield from _content(item)
        yield from _texts(item, "output", "arguments")  # tool output fed back; earlier calls
        for part in _list(item.get("summary")):  # reasoning summaries
            yield from _texts(part, "text")
    prompt = body.get("prompt")
    variables = prompt.get("variables") if isinstance(prompt, dict) else None
    if isinstance(variables, dict):
        yield from _texts(variables, *[k for k, v in variables.items() if isinstance(v, str)])


def _embeddings_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    return _strings(body, "input")


def _choices(answer: Callable[[dict[str, Any]], Iterator[Slot]]) -> Callable[..., Iterator[Slot]]:
    def slots(completion: dict[str, Any]) -> Iterator[Slot]:
        for choice in _list(completion.get("choices")):
            if isinstance(choice, dict):
                yield from answer(choice)

    return slots


def _choice_deltas(
    texts: Callable[[dict[str, Any]], Iterator[tuple[str, str]]],
) -> Callable[..., Iterator[Delta]]:
    """Each choice's streamed texts, keyed by choice index (its content) or by
    ``"<index>.tool_calls[<i>]"`` (a tool call's arguments): each is checked on its own."""

    def deltas(chunk: dict[str, Any]) -> Iterator[Delta]:
        for choice in _list(chunk.get("choices")):
            if isinstance(choice, dict):
                index = choice.get("index", 0)
                index = index if isinstance(index, int) else 0
                for part, text in texts(choice):
                    yield (f"{index}{part}" if part else index), text

    return deltas


def _responses_answer(response: dict[str, Any]) -> Iterator[Slot]:
    for item in _list(response.get("output")):
        if not isinstance(item, dict):
            continue
        yield from _texts(item, "arguments")  # a function call
        for part in _list(item.get("content")):
            yield from _texts(part, "text", "refusal")
        for part in _list(item.get("summary")):
            yield from _texts(part, "text")


_STREAMED = {  # Responses stream events that carry text, and which text of the item they add to
    "response.output_text.delta": "",
    "response.refusal.delta": ".refusal",
    "response.function_call_arguments.delta": ".arguments",
}


def _responses_deltas(event: dict[str, Any]) -> Iterator[Delta]:
    part = _STREAMED.get(str(event.get("type")))
    if part is not None and isinstance(event.get("delta"), str):
        index = event.get("output_index", 0)
        index = index if isinstance(index, int) else 0
        yield (f"{index}{part}" if part else index), event["delta"]


def _nothing(_: dict[str, Any]) -> Iterator[Any]:
    return iter(())


Delta = tuple[int | str, str]  # (a choice's index, or a tool call's key; its text)


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # under /v1, as sent upstream
    prompt_slots: Callable[[dict[str, Any]], Iterator[Slot]]
    answer_slots: Callable[[dict[str, Any]], Iterator[Slot]]
    delta_texts: Callable[[dict[str, Any]], Iterator[Delta]]
    tasks: bool = False  # calibrated tasks are served here
    required: str = "model"  # a body field it cannot do without, besides model
    # The field that may hold a prompt as token IDs, which no policy can read (None: none).
    token_field: str | None = None
    # Fields that carry a prompt as vectors (vLLM's ``prompt_embeds``): never readable.
    embeds_fields: tuple[str, ...] = ()

    def unread_prompt(self, body: dict[str, Any]) -> str | None:
        """The field of ``body`` that holds a prompt policies cannot read: :attr:`token_field`
        in another shape than text, or any of :attr:`embeds_fields` (None: every prompt is
        text)."""
        embeds = self.embedded(body)
        if embeds is not None:
            return embeds
        field = self.token_field
        return field if field is not None and _unreadable(body.get(field)) else None

    def embedded(self, body: dict[str, Any]) -> str | None:
        """The field of :attr:`embeds_fields` that ``body`` sends its prompt in, if any."""
        return next((f for f in self.embeds_fields if body.get(f) is not None), None)

    def answers(self, completion: dict[str, Any]) -> Iterator[Slot]:
        """Each text of an answer (each choice, each output part), rewritable."""
        return self.answer_slots(completion) if isinstance(completion, dict) else iter(())

    def deltas(self, chunk: Any) -> Iterator[Delta]:
        """(choice or output index, text) of each text in one streamed event."""
        return self.delta_texts(chunk) if isinstance(chunk, dict) else iter(())


CHAT = Endpoint(
    "chat.completions",
    "/chat/completions",
    _chat_prompt,
    _choices(_chat_answer),
    _choice_deltas(_chat_delta),
    tasks=True,
    required="messages",
)
COMPLETIONS = Endpoint(
    "completions",
    "/completions",
    _completion_prompt,
    _choices(_completion_answer),
    _choice_deltas(_completion_delta),
    required="prompt",
    token_field="prompt",
    embeds_fields=("prompt_embeds",),
)
RESPONSES = Endpoint(
    "responses", "/responses", _responses_prompt, _responses_answer, _responses_deltas
)
EMBEDDINGS = Endpoint(
    "embeddings",
    "/embeddings",
    _embeddings_prompt,
    _nothing,
    _nothing,
    required="input",
    token_field="input",
)
