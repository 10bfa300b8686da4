"""guard.upstreams (providers by name) and Pipeline.upstream_for: each route gets its own
provider, base URL and key; only an openai route without api_base uses the settings' upstream
and upstream_key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from guard.config import RouteConfig, Settings
from guard.errors import ConfigError
from guard.pipeline import Pipeline
from guard.store import SQLiteStore
from guard.upstreams import (
    UPSTREAMS,
    RawResponse,
    UpstreamSpec,
    build_upstream,
    known_providers,
    register_upstream,
)
from guard.upstreams.function import FunctionUpstream
from guard.upstreams.litellm import LiteLLMUpstream
from guard.upstreams.openai import OpenAIUpstream

T = TypeVar("T")

MAIN = "http://127.0.0.1:9001/v1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "u.db")
    yield s
    s.close()


def with_pipeline(
    settings: Settings, store: SQLiteStore, body: Callable[[Pipeline], T], **kw: Any
) -> T:
    """Run ``body(pipeline)`` inside an event loop, then close the pipeline's upstreams."""

    async def main() -> T:
        pipeline = Pipeline(settings, store, **kw)
        try:
            return body(pipeline)
        finally:
            await pipeline.aclose()

    return asyncio.run(main())


def _settings(**routes: RouteConfig) -> Settings:
    return Settings(upstream=MAIN, upstream_key="sk-main", routes=routes)


def test_openai_route_without_api_base_uses_the_settings_upstream_and_key(
    store: SQLiteStore,
) -> None:
    settings = _settings(plain=RouteConfig(upstream_model="x", api_key="ignored-without-base"))

    def check(p: Pipeline) -> None:
        up = p.upstream_for(settings.routes["plain"])
        assert isinstance(up, OpenAIUpstream)
        assert up.base_url == MAIN
        assert up.headers["Authorization"] == "Bearer sk-main"
        assert p.default_upstream is up  # the default route is the same upstream

    with_pipeline(settings, store, check)


def test_openai_route_with_its_own_api_base_gets_only_its_own_key(store: SQLiteStore) -> None:
    settings = _settings(
        keyed=RouteConfig(api_base="http://127.0.0.1:9002/v1/", api_key="sk-route"),
        keyless=RouteConfig(api_base="http://127.0.0.1:9003/v1"),
        same_url=RouteConfig(api_base=MAIN),
    )

    def check(p: Pipeline) -> None:
        keyed = p.upstream_for(settings.routes["keyed"])
        keyless = p.upstream_for(settings.routes["keyless"])
        same_url = p.upstream_for(settings.routes["same_url"])
        assert isinstance(keyed, OpenAIUpstream)
        assert isinstance(keyless, OpenAIUpstream)
        assert isinstance(same_url, OpenAIUpstream)
        assert keyed.base_url == "http://127.0.0.1:9002/v1"
        assert keyed.headers["Authorization"] == "Bearer sk-route"
        assert keyless.base_url == "http://127.0.0.1:9003/v1"
        for up in (keyless, same_url):
            assert "sk-main" not in up.headers.get("Authorization", "")
        assert same_url is not p.default_upstream

    with_pipeline(settings, store, check)


def test_each_litellm_route_gets_its_own_base_and_key_never_the_upstream_key(
    store: SQLiteStore,
) -> None:
    settings = _settings(
        one=RouteConfig(provider="litellm", api_base="http://127.0.0.1:9004", api_key="k1"),
        two=RouteConfig(provider="litellm", api_base="http://127.0.0.1:9005", api_key="k2"),
        bare=RouteConfig(provider="litellm", upstream_model="anthropic/claude"),
    )

    def check(p: Pipeline) -> None:
        got = {name: p.upstream_for(route) for name, route in settings.routes.items()}
        for up in got.values():
            assert isinstance(up, LiteLLMUpstream)
        one, two, bare = got["one"], got["two"], got["bare"]
        assert isinstance(one, LiteLLMUpstream)
        assert isinstance(two, LiteLLMUpstream)
        assert isinstance(bare, LiteLLMUpstream)
        assert (one.api_base, one.api_key) == ("http://127.0.0.1:9004", "k1")
        assert (two.api_base, two.api_key) == ("http://127.0.0.1:9005", "k2")
        assert (bare.api_base, bare.api_key) == (None, None)
        assert one.timeout_s == settings.timeout_s

    with_pipeline(settings, store, check)


def test_identical_routes_share_one_upstream(store: SQLiteStore) -> None:
    settings = _settings(
        a=RouteConfig(upstream_model="m1", api_base="http://127.0.0.1:9006/v1", api_key="k"),
        b=RouteConfig(upstream_model="m2", api_base="http://127.0.0.1:9006/v1", api_key="k"),
        c=RouteConfig(upstream_model="m3", api_base="http://127.0.0.1:9006/v1", api_key="other"),
        d=RouteConfig(upstream_model="m4"),
        e=RouteConfig(upstream_model="m5", mcq="cyclic"),
    )

    def check(p: Pipeline) -> None:
        r = settings.routes
        assert p.upstream_for(r["a"]) is p.upstream_for(r["b"])
        assert p.upstream_for(r["a"]) is not p.upstream_for(r["c"])
        assert p.upstream_for(r["d"]) is p.upstream_for(r["e"]) is p.default_upstream
        distinct = {id(p.upstream_for(route)) for route in r.values()}
        assert len(distinct) == 3

    with_pipeline(settings, store, check)


def test_given_upstream_replaces_only_the_settings_upstream(store: SQLiteStore) -> None:
    given = FunctionUpstream({}, is_async=False)
    settings = _settings(own=RouteConfig(api_base="http://127.0.0.1:9007/v1"))

    def check(p: Pipeline) -> None:
        assert p.upstream_for(settings.default_route) is given
        own = p.upstream_for(settings.routes["own"])
        assert isinstance(own, OpenAIUpstream)

    with_pipeline(settings, store, check, upstream=given)


def test_no_upstream_configured_is_a_config_error(store: SQLiteStore) -> None:
    settings = Settings()

    def check(p: Pipeline) -> None:
        with pytest.raises(ConfigError, match="no upstream configured"):
            p.upstream_for(settings.default_route)

    with_pipeline(settings, store, check)


def test_unknown_provider_lists_the_known_ones(store: SQLiteStore) -> None:
    settings = _settings(odd=RouteConfig(provider="openia"))

    def check(p: Pipeline) -> None:
        with pytest.raises(ConfigError, match="provider 'openia' is unknown") as info:
            p.upstream_for(settings.routes["odd"])
        assert "litellm, openai" in info.value.message

    with_pipeline(settings, store, check)
    with pytest.raises(ConfigError, match="use one of"):
        build_upstream(UpstreamSpec(provider="nope"))


def test_a_provider_whose_library_is_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A LiteLLM route on a plain ``pip install -e .`` stops start-up, naming the extra; before,
    calguard served, /readyz said ready and each request on the route was a 500."""
    from guard.server import create_app
    from guard.upstreams import NEEDS

    monkeypatch.setitem(NEEDS, "litellm", ("calguard_test_no_such_module", ".[litellm]"))
    settings = _settings(claude=RouteConfig(provider="litellm", upstream_model="anthropic/c"))
    with pytest.raises(ConfigError) as info:
        create_app(settings)
    assert info.value.message == (
        "routes.claude: provider 'litellm' needs calguard_test_no_such_module, which is not "
        "installed: pip install -e '.[litellm]' (from the checkout)"
    )


class _Recording:
    def __init__(self, spec: UpstreamSpec) -> None:
        self.spec = spec
        self.closed = 0

    async def post(self, path: str, body: dict[str, Any]) -> RawResponse:
        return RawResponse(200, b"{}", "application/json")

    async def get(self, path: str) -> RawResponse:
        return RawResponse(200, b"{}", "application/json")

    async def stream(self, path: str, body: dict[str, Any]) -> Any:
        yield b""

    async def aclose(self) -> None:
        self.closed += 1


@pytest.fixture
def custom() -> Iterator[str]:
    name = "test-custom"
    assert name not in UPSTREAMS
    register_upstream(name, _Recording)
    yield name
    UPSTREAMS.pop(name, None)


def test_registered_provider_is_used_by_a_route(store: SQLiteStore, custom: str) -> None:
    assert custom in known_providers()
    settings = Settings(
        upstream=MAIN,
        upstream_key="sk-main",
        timeout_s=7.0,
        max_attempts=2,
        retry_max_wait_s=1.5,
        routes={"mine": RouteConfig(provider=custom, api_base="mem://x", api_key="ck")},
    )

    def check(p: Pipeline) -> _Recording:
        up = p.upstream_for(settings.routes["mine"])
        assert isinstance(up, _Recording)
        assert p.upstream_for(settings.routes["mine"]) is up
        return up

    up = with_pipeline(settings, store, check)
    assert up.spec == UpstreamSpec(
        provider=custom,
        base_url="mem://x",
        api_key="ck",
        timeout_s=7.0,
        max_attempts=2,
        max_wait_s=1.5,
    )
    assert up.closed == 1


def test_build_upstream_passes_the_retry_settings_to_openai() -> None:
    async def main() -> None:
        up = build_upstream(
            UpstreamSpec(base_url=MAIN, api_key="k", timeout_s=3.0, max_attempts=5, max_wait_s=2.0)
        )
        assert isinstance(up, OpenAIUpstream)
        try:
            assert (up.timeout_s, up.max_attempts, up.max_wait_s) == (3.0, 5, 2.0)
        finally:
            await up.aclose()

    asyncio.run(main())
