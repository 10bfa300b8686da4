"""``json_schema``: the response must be JSON that validates against a schema.

The validator covers a common subset of JSON Schema; see :mod:`policies.schema` for what is and
is not supported (unsupported keywords are rejected when the policy is built).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import Field, field_validator

from policies.base import Context, Verdict
from policies.registry import BuiltinPolicy, PolicyParams, register
from policies.schema import check_schema, first_error

# A whole answer wrapped in a ```json ... ``` (or bare ```) fence, as chat models like to do.
_FENCE = re.compile(r"\A\s*```(?:json)?[ \t]*\n(.*?)\n?[ \t]*```\s*\Z", re.DOTALL | re.IGNORECASE)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class JsonSchemaParams(PolicyParams):
    """``schema``: the JSON Schema the response must satisfy (``{}`` accepts any JSON)."""

    json_schema: dict[str, Any] = Field(alias="schema")

    @field_validator("json_schema")
    @classmethod
    def _supported(cls, schema: dict[str, Any]) -> dict[str, Any]:
        check_schema(schema)
        return schema


@register
class JsonSchema(BuiltinPolicy[JsonSchemaParams]):
    """Checks responses only (prompts pass). The reason names the first failing JSON path,
    e.g. ``$.items[2].price: expected number, got string``."""

    name = "json_schema"
    params_model = JsonSchemaParams
    whole = True  # the start of a valid JSON answer is not JSON

    def check(self, ctx: Context) -> Verdict:
        if ctx.phase != "response":
            return self.passed()
        fenced = _FENCE.match(ctx.text)
        text = fenced.group(1) if fenced else ctx.text
        if not text.strip():
            return self.hit("response is empty, expected JSON")
        try:
            value = json.loads(text, parse_constant=_no_constants)
        except json.JSONDecodeError as err:
            return self.hit(f"response is not JSON: {err.msg} at line {err.lineno} col {err.colno}")
        except ValueError as err:
            return self.hit(f"response is not JSON: {err}")
        error = first_error(value, self.params.json_schema)
        return self.hit(f"response does not match the schema: {error}") if error else self.passed()
