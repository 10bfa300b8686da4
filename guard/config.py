"""Settings: from a YAML file, then environment variables, then command-line flags.

Environment variables are ``CALGUARD_<FIELD>`` (``CALGUARD_UPSTREAM``, ``CALGUARD_UPSTREAM_KEY``,
``CALGUARD_PORT``, ...; ``CALGUARD_ROUTES`` and ``CALGUARD_DEFAULT_ROUTE`` take JSON). Routes map a
client-facing model name to an upstream model and its default calibrations; a model with no route
goes to the upstream under its own name with the default route's settings.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guard.calibrations import check_calibration
from guard.errors import ConfigError

# How long calguard keeps an idle keep-alive connection open. It must be longer than the idle
# expiry of its clients' connection pools: httpx, and so the openai SDK, reuse an idle connection
# for up to 5 s, exactly uvicorn's default ``timeout_keep_alive``. With equal timeouts a client
# can send a request on a connection at the instant the server closes it as idle; the request is
# then never read, the kernel answers with a reset, and the client gets a ``ReadError``.
KEEP_ALIVE_S = 65


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RouteConfig(Strict):
    upstream_model: str | None = None  # None: the client-facing name
    provider: str = "openai"  # an upstream name (guard.upstreams): openai, litellm, ...
    # The provider's base URL and key for this route. An openai route without api_base uses
    # the settings' upstream and upstream_key; no other route is ever sent upstream_key.
    api_base: str | None = None
    api_key: str | None = None
    mcq: str = "pride"
    classify: str = "batch"
    judge: str = "swap"
    budget: float = Field(2.0, ge=1.0)
    warmup: int | None = Field(None, ge=0)  # None: the planner's default
    alpha: float | None = Field(None, ge=0.0, le=1.0)  # None: the planner's default
    auto_detect: bool = False  # opt-in: look for an MCQ in the last user message when no guard
    # Policies run on this route: [{type, params, action}] (see the policies package).
    policies: list[dict[str, Any]] = []

    @field_validator("mcq", "classify", "judge")
    @classmethod
    def _known_calibration(cls, value: str, info: Any) -> str:
        return check_calibration(info.field_name, value)


class Settings(Strict):
    upstream: str | None = None  # base URL of an OpenAI-compatible API, e.g. http://host/v1
    upstream_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    store: str = "sqlite:///calguard.db"
    timeout_s: float = Field(60.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    retry_max_wait_s: float = Field(20.0, ge=0)
    max_body_bytes: int = Field(4_000_000, gt=0)
    top_logprobs: int = Field(20, ge=1, le=20)
    # Proxy API keys: when any are set, requests need "Authorization: Bearer <one of them>".
    api_keys: list[str] = []
    # With no upstream_key and no api_keys: pass the client's own Authorization upstream.
    forward_client_key: bool = False
    # Other paths under /v1 (files, batches, stored completions, ...) pass through untouched;
    # a list of glob patterns (e.g. ["/files*", "/models*"]) restricts them to those.
    passthrough_paths: list[str] | None = None
    admin_key: str | None = None  # for GET /v1/guard/flags (no key: the endpoint is off)
    # Streaming fails closed: blocking policies see this many characters ahead of the client,
    # or the whole answer ("full") before anything is sent.
    stream_holdback: int | Literal["full"] = 256
    default_route: RouteConfig = RouteConfig()
    routes: dict[str, RouteConfig] = {}

    def route(self, model: str) -> tuple[str, RouteConfig]:
        """(upstream model name, route settings) for a client-facing model name."""
        route = self.routes.get(model, self.default_route)
        return route.upstream_model or model, route

    def named_routes(self) -> dict[str, RouteConfig]:
        """Every route by the name it has in the config; the default route as 'default_route'."""
        return {**self.routes, "default_route": self.default_route}


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. YAML 1.1's on/off/yes/no stay strings, so a
    policy's ``on: prompt`` key reads as written."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = environ.get(f"CALGUARD_{name.upper()}")
        if value is None:
            continue
        if name in ("routes", "default_route"):
            try:
                out[name] = json.loads(value)
            except ValueError as exc:
                raise ConfigError(f"CALGUARD_{name.upper()} must be JSON: {exc}") from exc
        elif name == "api_keys":
            out[name] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            out[name] = value
    return out


def load_settings(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """File < environment < explicit overrides (CLI flags); ``None`` overrides are ignored."""
    data: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
        data.update(loaded)
    data.update(_env(os.environ if environ is None else environ))
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings — {problems}") from exc
