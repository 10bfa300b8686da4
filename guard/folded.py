"""A request body as a parser that matches keys whatever their case reads it.

Go's ``encoding/json`` (Ollama's and LocalAI's OpenAI endpoints, Go gateways) takes a key for a
struct field whatever its case: ``"Content"``, ``"CONTENT"``, even the long s (U+017F) for ``s``
and the Kelvin sign for ``k`` (Unicode simple case folding); of several such keys in one object
the last wins. A message ``{"role": "user", "content": "hi", "Content": "..."}`` is ``hi`` to a
reader that looks up ``content`` and the other text to such an upstream. So where prompts are
checked, the policies read the body as that parser does: a field is found under any spelling
that folds to its name (:class:`FoldedDict`), and a field a policy looks up by its name in an
object where two keys fold alike to it is a 400 (``duplicate_key``: which one counts depends on
the parser). Keys that fold alike where nothing is looked up by name pass: the keys of a map
(``metadata``, a JSON schema's ``properties`` with ``id`` and ``ID``, a tool's arguments) are
data to Go as well, kept apart, and every value there is read. The body still goes upstream as
it was sent (rewritten texts put back under the client's own keys).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from guard.errors import InvalidRequestError


def _fold_char(c: str) -> str:
    lower = c.lower()
    lower = lower if len(lower) == 1 else c
    upper = lower.upper()
    if len(upper) != 1:
        return lower
    again = upper.lower()
    return again if len(again) == 1 else upper


def fold(key: str) -> str:
    """``key`` as Go's ``encoding/json`` compares field names: two keys that fold alike are one
    field there (``Content``, ``CONTENT``; ``me\u017f\u017fages`` is ``messages``)."""
    if key.isascii():
        return key.lower()
    return "".join(_fold_char(c) for c in key)


class _Reading(threading.local):
    on = False


_READING = _Reading()


@contextmanager
def reading() -> Iterator[None]:
    """While the policies read a body (in this thread): a field looked up by a name two keys of
    its object fold alike to is a :class:`InvalidRequestError` (``duplicate_key``)."""
    before, _READING.on = _READING.on, True
    try:
        yield
    finally:
        _READING.on = before


class FoldedDict(dict[str, Any]):
    """An object of a request body whose keys are looked up as a case-folding parser does: by
    its exact key first, else by the one key that folds alike. A write under a name goes to the
    key the client spelled, so the body keeps the client's keys. Keys that fold alike are kept
    apart; looking one of them up by name while :func:`reading` is refused."""

    _where = ""  # where the object is in the body, for an object with keys that fold alike
    _twice: dict[str, tuple[str, str]] = {}  # noqa: RUF012  a fold -> its first and last keys

    def __init__(self, pairs: Any = ()) -> None:
        super().__init__(pairs)
        self._keys = {(k.lower() if k.isascii() else fold(k)): k for k in dict.keys(self)}
        if len(self._keys) != len(self):  # rare: the class's empty one is never written to
            first: dict[str, str] = {}
            self._twice = {}
            for key in dict.keys(self):
                if first.setdefault(folded := fold(key), key) != key:
                    self._twice[folded] = (first[folded], key)

    def _spelled(self, key: Any) -> Any:
        if not isinstance(key, str):
            return key
        if self._twice and _READING.on and (pair := self._twice.get(fold(key))) is not None:
            _refuse(self._where, *pair)
        if dict.__contains__(self, key):
            return key
        return self._keys.get(fold(key), key)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, self._spelled(key))

    def __getitem__(self, key: str) -> Any:
        return dict.__getitem__(self, self._spelled(key))

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, self._spelled(key), default)

    def __setitem__(self, key: str, value: Any) -> None:
        # a rewritten text goes back where it was read: under its own key if it has one
        if not dict.__contains__(self, key) and isinstance(key, str):
            key = self._keys.get(fold(key), key)
        dict.__setitem__(self, key, value)
        if isinstance(key, str):
            self._keys.setdefault(fold(key), key)

    def __deepcopy__(self, memo: dict[int, Any]) -> FoldedDict:
        again = FoldedDict((k, copy.deepcopy(v, memo)) for k, v in self.items())
        again._where = self._where
        return again


def _refuse(where: str, first: str, key: str) -> None:
    at = f"{where}.{key}" if where else key
    raise InvalidRequestError(
        f"this route checks prompts and the request body gives the keys {first!r} and "
        f"{key!r} in one object ({at}): a parser that matches keys whatever their case "
        "(Go's, as in Ollama) reads them as one, and the last one counts there; send each "
        "key once",
        param=at,
        code="duplicate_key",
    )


def _copy(value: Any, twice: list[FoldedDict]) -> Any:
    if isinstance(value, str):  # the most common leaf first: a copy costs about a deepcopy
        return value
    if isinstance(value, list):
        return [_copy(v, twice) for v in value]
    if not isinstance(value, dict):
        return value
    out = FoldedDict({k: _copy(v, twice) for k, v in value.items()})
    if out._twice:
        twice.append(out)
    return out


def folded_copy(value: Any) -> Any:
    """A deep copy of ``value`` with every object a :class:`FoldedDict`; an object with keys
    that fold alike knows where it is, for the error a lookup there gives while
    :func:`reading`."""
    twice: list[FoldedDict] = []
    out = _copy(value, twice)
    if twice:  # rare: only then is each object's path built
        _place(out, "", {id(d) for d in twice})
    return out


def _place(value: Any, where: str, found: set[int]) -> None:
    if isinstance(value, FoldedDict):
        if id(value) in found:
            value._where = where
        items = [(f"{where}.{k}" if where else k, v) for k, v in value.items()]
    else:
        items = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    for at, v in items:
        if isinstance(v, dict | list):
            _place(v, at, found)
