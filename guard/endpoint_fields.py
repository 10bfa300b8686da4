"""Reading text out of a body's fields, and putting rewritten text back: the pieces
:mod:`guard.endpoints` and :mod:`guard.responses_fields` build each endpoint's readers from.

A field of an unexpected type holds nothing to read (a malformed request is the upstream's to
refuse, a malformed answer is read as empty), never an error.

Tool-call arguments are JSON text, and a client reads them parsed: ``{"q": "\\u0066orbidden"}``
is ``forbidden`` to it and to no policy reading the text as written. So :func:`arguments` also
gives each string (value or key) of arguments that parse as JSON and hold an escape, decoded,
as an :class:`Aside`; rewriting one re-serialises the arguments with it (``json.dumps``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

# A text in a body, and how to put a rewritten one back.
Slot = tuple[str, Callable[[str], None]]
Delta = tuple[int | str, str]  # (a streamed text's key: a choice's index, or a part's; a piece)
Path = tuple[Any, ...]  # keys and indexes into parsed JSON; a final _Key names a dict's key


class Aside(str):
    """Text beside the answer rather than the answer itself (reasoning, the decoded strings of
    tool-call arguments, code a tool ran and its output): span policies (denylist, regex,
    secrets, pii) read it; policies that judge an answer as a whole (its JSON shape, its
    length, a refusal, plain-function policies) do not, as it is not the answer."""


class _Key(str):
    """In a :data:`Path`, the key of a dict itself rather than its value."""


def setter(container: Any, key: Any) -> Callable[[str], None]:
    def put(text: str) -> None:
        container[key] = text

    return put


def dropping_logprobs(
    owner: Any, container: Any, key: Any, empty: Any = None
) -> Callable[[str], None]:
    """Put the text back and drop ``owner["logprobs"]``: their tokens would spell the original."""

    def put(text: str) -> None:
        container[key] = text
        if isinstance(owner, dict) and owner.get("logprobs"):
            owner["logprobs"] = empty

    return put


def as_list(value: Any) -> list[Any]:
    """A field that should be a list, as one."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """A field that should be an object, as one."""
    return value if isinstance(value, dict) else {}


def texts(obj: Any, *keys: str) -> Iterator[Slot]:
    """``obj[key]`` for each key whose value is a string."""
    if isinstance(obj, dict):
        for key in keys:
            if isinstance(obj.get(key), str):
                yield obj[key], setter(obj, key)


def asides(obj: Any, *keys: str) -> Iterator[Slot]:
    """:func:`texts`, as :class:`Aside` texts."""
    for text, put in texts(obj, *keys):
        yield Aside(text), put


def parts(value: Any, owner: Any = None, *, empty: Any = None) -> Iterator[Slot]:
    """Each ``text`` and ``refusal`` of a list of content parts (a part's own ``logprobs``, or
    ``owner``'s, are dropped when it is rewritten), and its annotations; a part that is a plain
    string, and a ``thinking`` part's text (vLLM renders both into the prompt)."""
    parts = as_list(value)
    for i, part in enumerate(parts):
        if isinstance(part, str):
            yield part, setter(parts, i)
        elif isinstance(part, dict):
            yield from asides(part, "thinking")
            for key in ("text", "refusal"):
                if isinstance(part.get(key), str):
                    holder = owner if owner is not None else part
                    yield part[key], dropping_logprobs(holder, part, key, empty)
            yield from citations(part.get("annotations"))


def citations(value: Any) -> Iterator[Slot]:
    """Every string of a list of annotations (a cited page's title and URL, a file's name),
    as text beside the answer; not their types and ids."""
    for note in as_list(value):
        pairs = note.items() if isinstance(note, dict) else ()
        for key, v in list(pairs):
            if key == "type" or key.endswith("_id"):
                continue
            if isinstance(v, str):
                yield Aside(v), setter(note, key)
            elif isinstance(v, dict):  # chat's {"type": "url_citation", "url_citation": {...}}
                yield from citations([v])


def content(message: Any, owner: Any = None) -> Iterator[Slot]:
    """A message's text: its string ``content``, or each text or refusal part of its list."""
    if not isinstance(message, dict):
        return
    value = message.get("content")
    if isinstance(value, str):
        yield value, dropping_logprobs(owner, message, "content")
    else:
        yield from parts(value, owner)


def strings_in(container: Any, key: str) -> Iterator[Slot]:
    """Every string value in the JSON value at ``container[key]``: a tool's parameters or a
    response format's schema (the model is shown them, each property's description, enum and
    default included), arguments sent as an object. Keys (property names) are not read."""
    if isinstance(container, dict):
        value = container.get(key)
    elif isinstance(container, list) and isinstance(key, int) and key < len(container):
        value = container[key]
    else:
        return
    yield from every_string(value)


def every_string(value: Any) -> Iterator[Slot]:
    """Every string value in ``value``, each taken as it is iterated (never looked up by its
    key: a map's keys are data, and two of them may fold alike, :mod:`guard.folded`)."""
    pairs = value.items() if isinstance(value, dict) else enumerate(as_list(value))
    for k, v in list(pairs):
        if isinstance(v, str):
            yield v, setter(value, k)
        elif isinstance(v, dict | list):
            yield from every_string(v)


def arguments(container: Any, key: str) -> Iterator[Slot]:
    """``container[key]``, JSON text (a tool call's arguments), as written, then decoded; or,
    sent as a JSON object itself (vLLM takes one and renders it), every string in it."""
    if isinstance(container, dict) and isinstance(container.get(key), dict | list):
        yield from strings_in(container, key)
    for raw, put in texts(container, key):
        yield raw, put
        rewrites = _Rewrites(container, key, raw)
        for path, text in decoded(raw):
            yield Aside(text), rewrites.putter(path)


def decoded(raw: str) -> Iterator[tuple[Path, str]]:
    """(path, string) of each string and key of ``raw`` parsed as JSON, if it parses and has an
    escape (without one every string reads in the text as written)."""
    if "\\" not in raw:
        return
    value = _loads(raw)
    if value is not None:
        yield from _strings(value, ())


def _loads(text: Any) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError, TypeError):
        return None


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield (*path, _Key(k)), k
            yield from _strings(v, (*path, k))


class _Rewrites:
    """The decoded strings of one arguments text rewritten so far, put back in and the whole
    re-serialised: into the arguments as they were before (so a rewrite of them as written
    stays), else as they came."""

    def __init__(self, container: Any, key: str, raw: str) -> None:
        self.container, self.key, self.raw = container, key, raw
        self.base: Any = None
        # By path and whether it names a key: a key's path and its value's are equal tuples
        # (a _Key equals its str), and one must not overwrite the other.
        self.done: dict[tuple[Path, bool], str] = {}

    def putter(self, path: Path) -> _Put:
        return _Put(self, path)

    def record(self, path: Path, text: str) -> None:
        if not self.done:
            self.base = self.container.get(self.key)
        self.done[path, bool(path) and isinstance(path[-1], _Key)] = text

    def write(self) -> None:
        if ((), False) in self.done:  # the arguments were one string
            self.container[self.key] = json.dumps(self.done[(), False])
            return
        for base in (self.base, self.raw):
            value = _loads(base)
            if value is not None and _replace_all(value, self.done):
                self.container[self.key] = json.dumps(value)
                return


class _Put:
    """Puts one decoded string back: at once when called, or, through :func:`put_all`, with
    the others of its arguments, which are then re-serialised once rather than once each."""

    __slots__ = ("path", "rewrites")

    def __init__(self, rewrites: _Rewrites, path: Path) -> None:
        self.rewrites, self.path = rewrites, path

    def __call__(self, text: str) -> None:
        self.rewrites.record(self.path, text)
        self.rewrites.write()


def put_all(rewrites: Iterable[tuple[Callable[[str], None], str]]) -> None:
    """``put(text)`` for each pair, in order, the decoded strings of one arguments text written
    back together: one at a time, arguments of n rewritten strings cost n parses and
    serialisations of the whole (a 100 kB list of e-mails took 6.5 s; a dict of them, cubic)."""
    batches: dict[int, _Rewrites] = {}
    for put, text in rewrites:
        if isinstance(put, _Put):
            put.rewrites.record(put.path, text)
            batches[id(put.rewrites)] = put.rewrites
        else:
            put(text)
    for batch in batches.values():
        batch.write()


def _replace_all(value: Any, done: dict[tuple[Path, bool], str]) -> bool:
    """Put each rewritten string of ``done`` at its path in ``value`` (False: one of them has
    nothing there). Values go first and each object's keys are renamed in one pass, deeper
    objects first: every path still names the keys above it as they were."""
    renames: dict[Path, dict[str, str]] = {}
    for (path, is_key), text in done.items():
        *steps, last = path
        if is_key:
            renames.setdefault(tuple(steps), {})[last] = text
            continue
        holder = _at(value, steps)
        if not _has(holder, last):
            return False
        holder[last] = text
    for parent in sorted(renames, key=len, reverse=True):
        holder, names = _at(value, parent), renames[parent]
        if not (isinstance(holder, dict) and all(k in holder for k in names)):
            return False
        pairs = [(names.get(k, k), v) for k, v in holder.items()]
        holder.clear()
        holder.update(pairs)
    return True


def _at(value: Any, steps: Iterable[Any]) -> Any:
    """What ``steps`` lead to in ``value`` (None: nothing)."""
    for step in steps:
        if not _has(value, step):
            return None
        value = value[step]
    return value


def _has(value: Any, step: Any) -> bool:
    if isinstance(value, dict):
        return step in value
    return isinstance(value, list) and isinstance(step, int) and step < len(value)
