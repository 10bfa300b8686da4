"""Upstreams by provider name: ``openai`` (the fast path) and ``litellm`` (the breadth path).

A route's ``provider`` picks one; :func:`register_upstream` (or the ``calguard.upstreams`` entry
point group) adds another: a callable taking an :class:`UpstreamSpec` and returning an
:class:`Upstream`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from importlib.util import find_spec

from guard.calibrations import closest
from guard.errors import ConfigError
from guard.upstreams.base import RawResponse, Upstream, UpstreamSpec

UpstreamFactory = Callable[[UpstreamSpec], Upstream]

UPSTREAMS: dict[str, UpstreamFactory] = {}


def register_upstream(provider: str, factory: UpstreamFactory) -> None:
    UPSTREAMS[provider] = factory


def _openai(spec: UpstreamSpec) -> Upstream:
    from guard.upstreams.openai import OpenAIUpstream

    if not spec.base_url:
        raise ConfigError("no upstream configured: pass --upstream URL or set CALGUARD_UPSTREAM")
    return OpenAIUpstream(
        spec.base_url,
        spec.api_key,
        timeout_s=spec.timeout_s,
        max_attempts=spec.max_attempts,
        max_wait_s=spec.max_wait_s,
        max_answer_bytes=spec.max_answer_bytes,
    )


def _litellm(spec: UpstreamSpec) -> Upstream:
    from guard.upstreams.litellm import LiteLLMUpstream

    return LiteLLMUpstream(spec.base_url, spec.api_key, spec.timeout_s)


register_upstream("openai", _openai)
register_upstream("litellm", _litellm)


def known_providers() -> list[str]:
    names = set(UPSTREAMS) | {ep.name for ep in entry_points(group="calguard.upstreams")}
    return sorted(names)


# Built-in providers whose library is an optional extra: (module, what to install).
NEEDS: dict[str, tuple[str, str]] = {"litellm": ("litellm", ".[litellm]")}


def check_provider(provider: str, where: str = "") -> str:
    """``provider`` if an upstream of that name is registered (or in the entry points) and its
    library is installed; else a ConfigError naming the closest and the known ones, or what to
    install (before: the first request on the route was a 500 ModuleNotFoundError)."""
    if provider in NEEDS and find_spec(NEEDS[provider][0]) is None:
        module, extra = NEEDS[provider]
        raise ConfigError(
            f"{where + ': ' if where else ''}provider {provider!r} needs {module}, which is not "
            f"installed: pip install -e '{extra}' (from the checkout)"
        )
    if provider in UPSTREAMS:
        return provider
    for ep in entry_points(group="calguard.upstreams"):
        if ep.name == provider:
            register_upstream(ep.name, ep.load())
            return provider
    known = known_providers()
    raise ConfigError(
        f"{where + ': ' if where else ''}provider {provider!r} is unknown"
        f"{closest(provider, known)}; use one of {', '.join(known)}"
    )


def build_upstream(spec: UpstreamSpec) -> Upstream:
    return UPSTREAMS[check_provider(spec.provider)](spec)


__all__ = [
    "NEEDS",
    "UPSTREAMS",
    "RawResponse",
    "Upstream",
    "UpstreamSpec",
    "build_upstream",
    "check_provider",
    "known_providers",
    "register_upstream",
]
