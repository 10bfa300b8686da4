"""Which upstream each route's calls go to: its own provider, base URL and key. Only an openai
route without its own ``api_base`` goes to the settings' ``upstream`` with ``upstream_key``; no
other route is ever sent that key. Routes that name the same place share one client."""

from __future__ import annotations

from guard.config import RouteConfig, Settings
from guard.upstreams import Upstream, UpstreamSpec, build_upstream


class RouteUpstreams:
    """Upstream clients by route, built on first use. ``given`` replaces the settings' upstream
    (the in-process wrapper's function, a test's fake)."""

    def __init__(self, settings: Settings, given: Upstream | None = None) -> None:
        self.settings = settings
        self.given = given
        self._built: dict[tuple[str, str | None, str | None], Upstream] = {}

    def for_route(self, route: RouteConfig) -> Upstream:
        own = route.own_provider
        if not own and self.given is not None:
            return self.given
        ident = (route.provider, route.api_base, route.api_key if own else None)
        up = self._built.get(ident)
        if up is None:
            s = self.settings
            up = build_upstream(
                UpstreamSpec(
                    provider=route.provider,
                    base_url=route.api_base if own else s.upstream,
                    api_key=route.api_key if own else s.upstream_key,
                    timeout_s=s.timeout_s,
                    max_attempts=s.max_attempts,
                    max_wait_s=s.retry_max_wait_s,
                    max_answer_bytes=s.max_answer_bytes,
                )
            )
            self._built[ident] = up
        return up

    async def aclose(self) -> None:
        for up in self._built.values():
            await up.aclose()
        self._built.clear()
