"""A small JSON Schema validator for the subset LLM output contracts use.

Supported keywords: ``type`` (a name or a list of names; ``integer`` accepts 1 and 1.0 but not
1.5; booleans are never numbers), ``properties``, ``required``, ``additionalProperties`` (a
boolean or a schema), ``items`` (one schema for every element), ``enum``, ``const``,
``minimum`` / ``maximum`` / ``exclusiveMinimum`` / ``exclusiveMaximum`` (numbers), ``minLength``
/ ``maxLength``, ``minItems`` / ``maxItems``, ``pattern`` (Python ``re``, searched, not
anchored), boolean schemas, and the annotations (``title``, ``description``, ...), which are
ignored.

Not supported, and rejected by :func:`check_schema` rather than silently ignored: ``$ref`` /
``$defs``, ``allOf`` / ``anyOf`` / ``oneOf`` / ``not``, ``if`` / ``then`` / ``else``,
``format``, ``patternProperties``, ``propertyNames``, ``dependent*``, ``multipleOf``,
``uniqueItems``, ``contains``, ``prefixItems`` and tuple-form ``items``, ``unevaluated*``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

ANNOTATIONS = frozenset(
    [
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
    ]
)
TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _names(v: Any) -> bool:
    names = [v] if isinstance(v, str) else v
    return isinstance(names, list) and bool(names) and all(t in TYPES for t in names)


# What each keyword's value must look like, so a malformed schema fails at start-up.
_SHAPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "type": (_names, f"a type name or a list of them ({', '.join(TYPES)})"),
    "properties": (lambda v: isinstance(v, dict), "an object of schemas"),
    "required": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "names"),
    "additionalProperties": (lambda v: isinstance(v, bool | dict), "a boolean or a schema"),
    "items": (lambda v: isinstance(v, bool | dict), "one schema (tuple form is not supported)"),
    "enum": (lambda v: isinstance(v, list), "a list"),
    "pattern": (lambda v: isinstance(v, str), "a string"),
    **dict.fromkeys(
        ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"), (_number, "a number")
    ),
    **dict.fromkeys(
        ("minLength", "maxLength", "minItems", "maxItems"), (_count, "a non-negative integer")
    ),
}
SUPPORTED = frozenset({*_SHAPES, "const"})


def check_schema(schema: Any, path: str = "$") -> None:
    """Raise ``ValueError`` naming the first keyword or value this validator cannot honour."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise ValueError(f"schema at {path} must be an object or a boolean")
    unknown = sorted(set(schema) - SUPPORTED - ANNOTATIONS)
    if unknown:
        raise ValueError(
            f"schema at {path} uses unsupported keyword {unknown[0]!r}; "
            f"supported: {', '.join(sorted(SUPPORTED))}"
        )
    for key, (ok, expected) in _SHAPES.items():
        if key in schema and not ok(schema[key]):
            raise ValueError(f"schema at {path}: {key!r} must be {expected}")
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except re.error as err:
            raise ValueError(f"schema at {path}: pattern is not a valid regex: {err}") from None
    for name, sub in schema.get("properties", {}).items():
        check_schema(sub, _child(path, name))
    for key in ("items", "additionalProperties"):
        check_schema(schema.get(key, True), f"{path}.{key}")


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(v), "unknown")


def _is(v: Any, t: str) -> bool:
    name = _type_name(v)
    if t == "number":
        return name in ("integer", "number")
    if t == "integer":
        return name == "integer" or (name == "number" and float(v).is_integer())
    return name == t


def _same(a: Any, b: Any) -> bool:
    # JSON equality: Python's 1 == True and 1 == 1.0 are not both JSON's.
    ta, tb = _type_name(a), _type_name(b)
    if {ta, tb} <= {"integer", "number"}:
        return bool(a == b)
    if ta != tb:
        return False
    if ta == "array":
        return len(a) == len(b) and all(map(_same, a, b))
    if ta == "object":
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


# Keyword, and when a value fails it.
_BOUNDS: tuple[tuple[str, Callable[[Any, Any], bool]], ...] = (
    ("minimum", operator.lt),
    ("maximum", operator.gt),
    ("exclusiveMinimum", operator.le),
    ("exclusiveMaximum", operator.ge),
)


def first_error(value: Any, schema: Any, path: str = "$") -> str | None:
    """The first way ``value`` fails ``schema``, as ``"<json path>: <what>"``, or None."""
    if schema is True or schema == {}:
        return None
    if schema is False:
        return f"{path}: no value is allowed here"
    s: dict[str, Any] = schema
    if "type" in s:
        types = [s["type"]] if isinstance(s["type"], str) else list(s["type"])
        if not any(_is(value, t) for t in types):
            return f"{path}: expected {' or '.join(types)}, got {_type_name(value)}"
    if "enum" in s and not any(_same(value, e) for e in s["enum"]):
        return f"{path}: not one of the allowed values"
    if "const" in s and not _same(value, s["const"]):
        return f"{path}: not the required constant"
    if _is(value, "number"):
        for key, fails in _BOUNDS:
            if key in s and fails(value, s[key]):
                return f"{path}: {value} violates {key} {s[key]}"
    if isinstance(value, str):
        if len(value) < s.get("minLength", 0) or len(value) > s.get("maxLength", len(value)):
            return f"{path}: length {len(value)} is outside the allowed range"
        if "pattern" in s and not re.search(s["pattern"], value):
            return f"{path}: does not match pattern {s['pattern']!r}"
    if isinstance(value, list):
        if len(value) < s.get("minItems", 0) or len(value) > s.get("maxItems", len(value)):
            return f"{path}: {len(value)} items is outside the allowed range"
        for i, item in enumerate(value):
            if "items" in s and (err := first_error(item, s["items"], f"{path}[{i}]")):
                return err
    if isinstance(value, dict):
        return _object_error(value, s, path)
    return None


def _object_error(value: dict[str, Any], s: dict[str, Any], path: str) -> str | None:
    for name in s.get("required", []):
        if name not in value:
            return f"{_child(path, name)}: required property is missing"
    props: dict[str, Any] = s.get("properties", {})
    extra = s.get("additionalProperties", True)
    for name, item in value.items():
        sub = props.get(name, extra)
        if sub is False:
            return f"{_child(path, name)}: additional property is not allowed"
        if err := first_error(item, sub, _child(path, name)):
            return err
    return None
