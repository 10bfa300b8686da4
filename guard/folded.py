"""A request body as a parser that matches keys whatever their case reads it.

Go's ``encoding/json`` (Ollama's and LocalAI's OpenAI endpoints, Go gateways) takes a key for a
struct field whatever its case: ``"Content"``, ``"CONTENT"``, even the long s (U+017F) for ``s``
and the Kelvin sign for ``k`` (Unicode simple case folding); of several such keys in one object
the last wins. A message ``{"role": "user", "content": "hi", "Content": "..."}`` is ``hi`` to a
reader that looks up ``content`` and the other text to such an upstream. So where prompts are
checked, the policies read the body as that parser does: two keys of one object that fold alike
are a 400 (``duplicate_key``: which one counts depends on the parser), and a field is found
under any spelling that folds to its name (:class:`FoldedDict`). The body still goes upstream as
it was sent (rewritten texts put back under the client's own keys).
"""

from __future__ import annotations

import copy
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


class FoldedDict(dict[str, Any]):
    """An object of a request body whose keys are looked up as a case-folding parser does: by
    its exact key first, else by the one key that folds alike. A write under a name goes to the
    key the client spelled, so the body keeps the client's keys."""

    def __init__(self, pairs: Any = ()) -> None:
        super().__init__(pairs)
        self._keys = {(k.lower() if k.isascii() else fold(k)): k for k in dict.keys(self)}

    def _spelled(self, key: Any) -> Any:
        if dict.__contains__(self, key) or not isinstance(key, str):
            return key
        return self._keys.get(fold(key), key)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, self._spelled(key))

    def __getitem__(self, key: str) -> Any:
        return dict.__getitem__(self, self._spelled(key))

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, self._spelled(key), default)

    def __setitem__(self, key: str, value: Any) -> None:
        key = self._spelled(key)
        dict.__setitem__(self, key, value)
        if isinstance(key, str):
            self._keys.setdefault(fold(key), key)

    def __deepcopy__(self, memo: dict[int, Any]) -> FoldedDict:
        return FoldedDict((k, copy.deepcopy(v, memo)) for k, v in self.items())


class _Collision(Exception):
    pass


def _copy(value: Any) -> Any:
    if isinstance(value, str):  # the most common leaf first: a copy costs about a deepcopy
        return value
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = FoldedDict({k: _copy(v) for k, v in value.items()})
    if len(out._keys) != len(out):
        raise _Collision
    return out


def folded_copy(value: Any) -> Any:
    """A deep copy of ``value`` with every object a :class:`FoldedDict`; two keys of one object
    that fold alike are an :class:`InvalidRequestError` (``duplicate_key``) that names them."""
    try:
        return _copy(value)
    except _Collision:
        where, first, key = _collision(value, "")  # found again, the path built only now
    raise InvalidRequestError(
        f"this route checks prompts and the request body gives the keys {first!r} and "
        f"{key!r} in one object ({where}): a parser that matches keys whatever their case "
        "(Go's, as in Ollama) reads them as one, and the last one counts there; send each "
        "key once",
        param=where,
        code="duplicate_key",
    )


def _collision(value: Any, where: str) -> tuple[str, str, str]:
    if isinstance(value, dict):
        seen: dict[str, str] = {}
        for key in value:
            first = seen.setdefault(fold(key), key)
            if first != key:
                return (f"{where}.{key}" if where else key), first, key
        items = [(f"{where}.{k}" if where else k, v) for k, v in value.items()]
    else:
        items = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    for at, v in items:
        if isinstance(v, dict | list):
            try:
                _copy(v)
            except _Collision:
                return _collision(v, at)
    raise AssertionError("no collision")  # pragma: no cover
