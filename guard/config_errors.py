"""Settings errors as a user reads them: the key as it is written in the file
(``routes.x.policies[0]``, not pydantic's ``routes.x.policies.0``), one line per key, and for an
unknown name the closest valid one."""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from guard.calibrations import closest

# Sections of a LiteLLM proxy config that calguard does not read, and what to do instead.
LITELLM_SECTIONS = {
    "general_settings": "for master_key, use api_keys",
    "litellm_settings": "LiteLLM's own settings",
    "router_settings": "LiteLLM's load balancing",
    "environment_variables": "export them instead",
}


def file_path(loc: tuple[int | str, ...], data: Any) -> tuple[str, str]:
    """(the key as written in the file, what is wrong with a mapping key, if anything) for a
    pydantic error location: steps that are not in ``data`` (union members, validator tags)
    are dropped; a last step that is not there (a missing or unknown key) is kept."""
    out = ""
    node: Any = data
    for i, part in enumerate(loc):
        if part == "[key]":
            return out, f"the key {loc[i - 1]!r}"
        last = i == len(loc) - 1
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out, node = f"{out}[{part}]", node[part]
            continue
        if isinstance(node, dict) and part in node and not (not last and loc[i + 1] == "[key]"):
            out, node = (f"{out}.{part}" if out else str(part)), node[part]
            continue
        if last and isinstance(node, dict):
            out = f"{out}.{part}" if out else str(part)
    return out, ""


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the field at ``loc`` (walking field annotations)."""
    tp: Any = root
    for part in loc:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                continue  # a union member's tag, not a field
            tp = field.annotation
            continue
        while get_origin(tp) in (Union, types.UnionType):
            arms = [a for a in get_args(tp) if a is not type(None)]
            models = [a for a in arms if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else arms[0]
        if get_origin(tp) in (dict, list):
            tp = get_args(tp)[-1]
    while get_origin(tp) in (Union, types.UnionType):
        tp = next((a for a in get_args(tp) if a is not type(None)), tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _unknown(name: str, where: str, valid: list[str]) -> str:
    shown = f"{where}.{name}" if where else name
    if not where and name in LITELLM_SECTIONS:
        return (
            f"unknown setting {shown!r}: a LiteLLM proxy section calguard does not read "
            f"({LITELLM_SECTIONS[name]}); of a LiteLLM config calguard reads model_list"
        )
    hint = closest(name, valid)
    if not hint:
        hint = f"; valid settings here: {', '.join(valid)}"
    return f"unknown setting {shown!r}{hint}"


def _message(err: ErrorDetails) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def describe(exc: ValidationError, data: Any, root: type[BaseModel]) -> str:
    """One line per key, the keys named as in ``data`` (the file's mapping)."""
    lines: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            where, _ = file_path(loc[:-1], data)
            model = _model_at(root, loc[:-1])
            valid = sorted(model.model_fields) if model is not None else []
            lines.setdefault(_unknown(str(loc[-1]), where, valid), [])
            continue
        where, key_note = file_path(loc, data)
        msg = _message(err)
        # A model validator's error names its field first ("api_base: ..."): put it in the path.
        field, _, rest = msg.partition(": ")
        model = _model_at(root, loc)
        if rest and model is not None and field in model.model_fields:
            where, msg = (f"{where}.{field}" if where else field), rest
        if key_note:
            msg = f"{key_note}: {msg}"
        if err["type"] == "missing":
            msg = "required, and missing"
        line = lines.setdefault(where, [])
        if msg not in line:
            line.append(msg)
    out = []
    for where, msgs in lines.items():
        if not msgs:
            out.append(where)
        elif where:
            out.append(f"{where}: {' or '.join(msgs)}")
        else:
            out.append(" or ".join(msgs))
    return "; ".join(out)


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def misspelled_env(environ: Mapping[str, str], fields: Iterable[str]) -> list[str]:
    """A warning for each ``CALGUARD_*`` variable that is not a setting (of ``fields``) but is
    two edits or fewer from one (``CALGUARD_UPSTREM``): it would be ignored, and the proxy
    start on a default. Other names under the prefix (a script's ``CALGUARD_URL``, a secret's
    ``CALGUARD_TEAM_KEY`` read through ``os.environ/``) pass."""
    names = [*(n.upper() for n in fields), "CONFIG"]
    out = []
    for var in sorted(environ):
        name = var.removeprefix("CALGUARD_")
        if name == var or name in names:
            continue
        dist, near = min((_edits(name, n), n) for n in names)
        if dist <= min(2, len(near) // 3):
            out.append(f"{var} is not a setting and is ignored; did you mean CALGUARD_{near}?")
    return out
