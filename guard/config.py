"""Settings: from a YAML file, then environment variables, then command-line flags.

Environment variables are ``CALGUARD_<FIELD>`` (``CALGUARD_UPSTREAM``, ``CALGUARD_UPSTREAM_KEY``,
``CALGUARD_PORT``, ...; ``CALGUARD_ROUTES`` and ``CALGUARD_DEFAULT_ROUTE`` take JSON). Routes map a
client-facing model name to an upstream model and its default calibrations; a model with no route
goes to the upstream under its own name with the default route's settings.

As in a LiteLLM proxy config, a string value ``os.environ/NAME`` is read from the environment
variable ``NAME`` (a secret stays out of the file), and a ``model_list`` of
``{model_name, litellm_params: {model, api_base, api_key}}`` entries becomes routes with
``provider: litellm``. A mistake stops start-up with a :class:`~guard.errors.ConfigError` that
names the key as it is written in the file (``routes.x.mcq``, ``default_route.policies[0]``)
and, for an unknown name, the closest valid one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from calibrators.planner import REFRESH_ALPHA
from guard.calibrations import check_calibration
from guard.config_errors import describe
from guard.errors import ConfigError

# How long calguard keeps an idle keep-alive connection open. It must be longer than the idle
# expiry of its clients' connection pools: httpx, and so the openai SDK, reuse an idle connection
# for up to 5 s, exactly uvicorn's default ``timeout_keep_alive``. With equal timeouts a client
# can send a request on a connection at the instant the server closes it as idle; the request is
# then never read, the kernel answers with a reset, and the client gets a ``ReadError``.
KEEP_ALIVE_S = 65
ENV_REF = "os.environ/"
HTTP_PROVIDERS = ("openai", "litellm")  # providers whose api_base is an http(s) URL


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def http_url(value: str) -> str:
    """``value`` if it is an http(s) URL with a host (and a valid port); else ValueError."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # a bad port raises here
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{value!r} is not an http(s) URL; write the base URL of an OpenAI-compatible API, "
            "e.g. http://127.0.0.1:8000/v1"
        )
    return value


def sendable_key(value: str | None) -> str | None:
    """A key calguard sends in a header: one with a line break (a key file's last newline) or
    another control character could never go (every request would fail), said at start-up
    without the key itself."""
    if value is not None and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(
            "holds a line break or another control character (a key file's trailing newline?): "
            "it cannot be sent in a header; remove it"
        )
    return value


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
    # adaptive: how a question asked in some orders is answered (None: the planner's default,
    # "gaussian"; "mean" for a near-random model, README). A key keeps what it was made with.
    pooling: Literal["gaussian", "mean"] | None = None
    # adaptive: learn afresh when a key's answers change under it (None: the planner's default,
    # on; calibrators/drift.py). A key keeps what it was made with.
    drift_check: bool | None = None
    auto_detect: bool = False  # opt-in: look for an MCQ in the last user message when no guard
    # Policies run on this route: [{type, params, action}] (see the policies package).
    policies: list[dict[str, Any]] = []

    _api_key = field_validator("api_key")(sendable_key)

    @field_validator("mcq", "classify", "judge")
    @classmethod
    def _known_calibration(cls, value: str, info: Any) -> str:
        return check_calibration(info.field_name, value)

    @model_validator(mode="after")
    def _budget_pays_for_the_refresh(self) -> RouteConfig:
        # Adaptive asks every order of one question in 1/alpha: 1 + alpha * (n - 1) calls a
        # question for n options, at the least (two options) 1 + alpha. Below that no MCQ on
        # the route could be calibrated adaptively: a mistake of the file, said at start-up.
        alpha = REFRESH_ALPHA if self.alpha is None else self.alpha
        if self.budget < 1.0 + alpha:
            raise ValueError(
                f"budget: {self.budget:g} is below the cost of the prior refresh (1 + alpha * "
                f"(options - 1): {1.0 + alpha:g} for two options, {1.0 + 3 * alpha:g} for four, "
                f"alpha {alpha:g}); raise it, or lower alpha"
            )
        return self

    @model_validator(mode="after")
    def _api_base_is_a_url(self) -> RouteConfig:
        # A registered provider may take any address (mem://, a socket path); ours take URLs.
        if self.api_base is not None and self.provider in HTTP_PROVIDERS:
            try:
                http_url(self.api_base)
            except ValueError as exc:
                raise ValueError(f"api_base: {exc}") from None
        return self

    @property
    def own_provider(self) -> bool:
        """The route goes to its own provider or base URL, not to the settings' ``upstream``."""
        return self.provider != "openai" or bool(self.api_base)


class LiteLLMParams(Strict):
    """What calguard reads of a LiteLLM ``litellm_params``: the rest is LiteLLM's own."""

    model: str  # LiteLLM's model name: openai/gpt-4o, anthropic/claude-..., ollama/...
    api_base: str | None = None
    api_key: str | None = None

    _api_key = field_validator("api_key")(sendable_key)

    @field_validator("api_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)


_OWN_UPSTREAM = ("upstream_model", "provider", "api_base", "api_key")


class ModelListEntry(RouteConfig):
    """One entry of a LiteLLM-style ``model_list``: a route with ``provider: litellm``. Route
    settings (``mcq``, ``policies``, ...) may sit beside ``model_name``."""

    model_name: str
    litellm_params: LiteLLMParams
    model_info: dict[str, Any] = {}  # LiteLLM's metadata about the model; not used

    @model_validator(mode="after")
    def _upstream_in_litellm_params(self) -> ModelListEntry:
        given = sorted(set(_OWN_UPSTREAM) & self.model_fields_set)
        if given:
            raise ValueError(
                f"{given[0]}: a model_list entry's upstream is its litellm_params "
                "(model, api_base, api_key)"
            )
        return self

    def route(self) -> RouteConfig:
        own = self.model_dump(
            exclude_unset=True, exclude={"model_name", "litellm_params", "model_info"}
        )
        p = self.litellm_params
        return RouteConfig(
            **own,
            provider="litellm",
            upstream_model=p.model,
            api_base=p.api_base,
            api_key=p.api_key,
        )


class Settings(Strict):
    upstream: str | None = None  # base URL of an OpenAI-compatible API, e.g. http://host/v1
    upstream_key: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    store: str = "sqlite:///calguard.db"
    # Where a stream's flag record waits while the store is down (its text already went out):
    # None: beside a SQLite file (calguard.db-spool/), else ./calguard-spool/<the database's>/.
    spool_dir: str | None = None
    spool_max_bytes: int = Field(1 << 30, gt=0)  # past it, as with a full disk: not kept
    # One upstream attempt, as long as the OpenAI SDK waits (600 s): a reasoning model's
    # answer can take minutes, and an attempt cut short is asked (and billed) again.
    timeout_s: float = Field(600.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    deadline_s: float | None = Field(None, gt=0)  # whole request; None: from timeout_s
    # /metrics needs the admin key (else a proxy key) when there is one; true opens it.
    metrics_public: bool = False
    retry_max_wait_s: float = Field(20.0, ge=0)
    # A text endpoint's body (read whole, checked by the policies) larger than this, once
    # decoded, is a 413. Above OpenAI's own 50 MB for a request's images: a drop-in takes what
    # OpenAI takes. (A relayed body, a file upload, is not bounded by it: it streams through.)
    max_body_bytes: int = Field(64_000_000, gt=0)
    # An upstream answer read whole (not a stream) larger than this, once decoded, is a 502
    # upstream_too_large: a bound on memory, and on a compressed "bomb". (A relayed file's
    # content is not read whole: it streams through.)
    max_answer_bytes: int = Field(256_000_000, gt=0)
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
    # GET /readyz: how long the store and the upstream each get to answer.
    ready_timeout_s: float = Field(2.0, gt=0)
    default_route: RouteConfig = RouteConfig()
    routes: dict[str, RouteConfig] = {}
    # LiteLLM proxy style: each entry becomes routes[model_name] (provider litellm).
    model_list: list[ModelListEntry] = []

    _upstream_key = field_validator("upstream_key")(sendable_key)

    @field_validator("upstream")
    @classmethod
    def _upstream_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(
                f"{value!r} is not a store URL; a SQLite file is written sqlite:///{value} "
                "(sqlite:////abs/path.db for an absolute path)"
            )
        if value.startswith("sqlite:"):
            from guard.store import sqlite_path  # the one place that reads sqlite URLs

            try:
                sqlite_path(value)
            except ConfigError as exc:
                raise ValueError(exc.message) from None
        return value

    @model_validator(mode="after")
    def _model_list_routes(self) -> Settings:
        routes = dict(self.routes)
        for i, entry in enumerate(self.model_list):
            if entry.model_name in routes:
                raise ValueError(
                    f"model_list[{i}].model_name: {entry.model_name!r} is already a route; "
                    "calguard sends one model name to one deployment (LiteLLM's load balancing "
                    "across deployments of one name is not supported)"
                )
            routes[entry.model_name] = entry.route()
        self.routes = routes
        return self

    def route(self, model: str) -> tuple[str, RouteConfig]:
        """(upstream model name, route settings) for a client-facing model name."""
        route = self.routes.get(model, self.default_route)
        return route.upstream_model or model, route

    @property
    def deadline(self) -> float:
        """The whole request's deadline (until its reply, or a stream's first byte): the given
        ``deadline_s``, else every attempt's ``timeout_s`` and the waits between them."""
        if self.deadline_s is not None:
            return self.deadline_s
        return self.timeout_s * self.max_attempts + self.retry_max_wait_s * (self.max_attempts - 1)

    def serves(self, model: str) -> bool:
        """Whether a request for ``model`` has somewhere to go."""
        route = self.routes.get(model, self.default_route)
        return bool(self.upstream) or route.own_provider

    def needs_upstream(self) -> bool:
        """Whether ``upstream`` is needed: some route (or the default, when there are no
        routes) goes to it rather than to its own provider and base URL."""
        return any(not r.own_provider for r in self.routes.values()) or (
            not self.routes and not self.default_route.own_provider
        )

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


def read_yaml(text: str) -> Any:
    """YAML as calguard reads it (YAML 1.2 booleans)."""
    return yaml.load(text, Loader=_Loader)


def resolve_env_refs(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """``value`` with every string ``os.environ/NAME`` replaced by the variable ``NAME``; a
    variable that is not set stops start-up, naming it and the key that refers to it."""
    if isinstance(value, str) and value.startswith(ENV_REF):
        name = value[len(ENV_REF) :]
        if name not in environ:
            raise ConfigError(
                f"{where or 'a setting'}: {value} names the environment variable {name!r}, "
                "which is not set; export it (or write the value in place)"
            )
        return environ[name]
    if isinstance(value, Mapping):
        return {
            k: resolve_env_refs(v, environ, f"{where}.{k}" if where else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [resolve_env_refs(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = environ.get(f"CALGUARD_{name.upper()}")
        if value is None:
            continue
        if name in ("routes", "default_route", "model_list"):
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
    """File < environment < explicit overrides (CLI flags); ``None`` overrides are ignored.
    ``os.environ/NAME`` values are read from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            loaded = read_yaml(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
        data.update(loaded)
    data.update(_env(env))
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    data = resolve_env_refs(data, env)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings — {describe(exc, data, Settings)}") from exc
