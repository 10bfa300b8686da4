"""json_schema: the response parses as JSON and validates against the schema subset."""

from __future__ import annotations

from typing import Any

import pytest

from policies import Action, Context, PolicyConfigError, build_policy

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 10, "pattern": "^[A-Z]"},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "email": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 2},
        "kind": {"const": "person"},
        "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("schema", "text", "error"),
    [
        (PERSON, '{"name": "Ada", "age": 36}', None),
        (PERSON, '```json\n{"name": "Ada", "age": 36}\n```', None),
        (PERSON, '```\n{"name": "Ada", "age": 36.0}\n```\n', None),  # 36.0 is an integer
        (
            PERSON,
            '{"name": "Ada", "age": 36, "email": null, "tags": ["a"], "kind": "person"}',
            None,
        ),
        (PERSON, '{"name": "Ada", "age": 36, "score": 0.5}', None),
        (PERSON, "", "response is empty, expected JSON"),
        (PERSON, "Sure! Here it is: {}", "response is not JSON: Expecting value at line 1 col 1"),
        (PERSON, '{"name": "Ada", "age": NaN}', "response is not JSON: NaN is not valid JSON"),
        (PERSON, "[]", "$: expected object, got array"),
        (PERSON, '{"name": "Ada"}', "$.age: required property is missing"),
        (PERSON, '{"name": "Ada", "age": 36.5}', "$.age: expected integer, got number"),
        (PERSON, '{"name": "Ada", "age": true}', "$.age: expected integer, got boolean"),
        (PERSON, '{"name": "Ada", "age": -1}', "$.age: -1 violates minimum 0"),
        (PERSON, '{"name": "Ada", "age": 151}', "$.age: 151 violates maximum 150"),
        (PERSON, '{"name": "", "age": 1}', "$.name: length 0 is outside the allowed range"),
        (PERSON, '{"name": "Adalovelace!", "age": 1}', "$.name: length 12 is outside"),
        (PERSON, '{"name": "ada", "age": 1}', "$.name: does not match pattern '^[A-Z]'"),
        (PERSON, '{"name": "Ada", "age": 1, "x": 1}', "$.x: additional property is not allowed"),
        (PERSON, '{"name": "Ada", "age": 1, "email": 5}', "$.email: expected string or null"),
        (PERSON, '{"name": "Ada", "age": 1, "tags": []}', "$.tags: 0 items is outside"),
        (PERSON, '{"name": "Ada", "age": 1, "tags": ["a", "b", "a"]}', "$.tags: 3 items"),
        (PERSON, '{"name": "Ada", "age": 1, "tags": ["a", "c"]}', "$.tags[1]: not one of"),
        (PERSON, '{"name": "Ada", "age": 1, "kind": "robot"}', "$.kind: not the required const"),
        (PERSON, '{"name": "Ada", "age": 1, "score": 1}', "$.score: 1 violates exclusiveMaximum"),
        (PERSON, '{"name": "Ada", "age": 1, "score": 0}', "$.score: 0 violates exclusiveMinimum"),
        ({"enum": [1, "x"]}, "true", "$: not one of the allowed values"),  # true is not 1
        ({"enum": [1, "x"]}, "1.0", None),  # but 1.0 is
        ({"enum": [1, "x"]}, "2", "$: not one of the allowed values"),
        ({"const": 0.5}, "0.25", "$: not the required constant"),
        ({"const": [1, {"a": False}]}, '[1, {"a": 0}]', "$: not the required constant"),
        ({"const": [1, {"a": False}]}, '[1, {"a": false}]', None),
        ({"type": "number"}, "false", "$: expected number, got boolean"),
        ({}, '"anything"', None),
        (
            {"type": "object", "additionalProperties": {"type": "integer"}},
            '{"a b": 1, "c": "2"}',
            "$.c: expected integer, got string",
        ),
        (
            {"properties": {"a b": {"type": "object", "required": ["x"]}}},
            '{"a b": {}}',
            "$['a b'].x: required property is missing",
        ),
        ({"items": {"items": {"type": "null"}}}, "[[null], [null, 0]]", "$[1][1]: expected null"),
        ({"items": False}, "[]", None),
        ({"items": False}, "[1]", "$[0]: no value is allowed here"),
    ],
)
def test_json_schema(schema: dict[str, Any], text: str, error: str | None) -> None:
    policy = build_policy({"type": "json_schema", "params": {"schema": schema}, "action": "block"})
    verdict = policy.check(Context("response", text))
    if error is None:
        assert verdict.action is Action.PASS, verdict.reason
        return
    assert verdict.action is Action.BLOCK
    assert error in verdict.reason


def test_prompts_are_not_checked() -> None:
    policy = build_policy({"type": "json_schema", "params": {"schema": {"type": "object"}}})
    assert policy.check(Context("prompt", "not json")).action is Action.PASS
    assert policy.check(Context("response", "not json")).action is Action.FLAG


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"oneOf": [{"type": "string"}]}, "unsupported keyword 'oneOf'"),
        ({"properties": {"a": {"$ref": "#/x"}}}, "schema at $.a uses unsupported keyword '$ref'"),
        ({"items": [{"type": "string"}]}, "tuple form is not supported"),
        ({"type": "float"}, "'type' must be a type name"),
        ({"required": "name"}, "'required' must be names"),
        ({"minLength": -1}, "'minLength' must be a non-negative integer"),
        ({"maximum": "10"}, "'maximum' must be a number"),
        ({"pattern": "("}, "pattern is not a valid regex"),
        ({"additionalProperties": {"format": "email"}}, "$.additionalProperties"),
    ],
)
def test_unsupported_or_malformed_schemas_fail_at_build(
    schema: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyConfigError, match="'schema'") as info:
        build_policy({"type": "json_schema", "params": {"schema": schema}})
    assert message in str(info.value)


def test_annotations_are_allowed() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "T",
        "type": "null",
    }
    policy = build_policy({"type": "json_schema", "params": {"schema": schema}})
    assert policy.check(Context("response", "null")).action is Action.PASS
