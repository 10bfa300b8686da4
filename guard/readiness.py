"""Readiness (``GET /readyz``): can this process serve a request now?

Ready when the store answers a trivial query and the upstream answers ``GET /models``, each
within ``ready_timeout_s``. The store's check also says how many flag records wait in the spool
(``spooled``), when any do. An upstream that answers with a status below 500 is up (a server
without ``/models`` still serves chat), except 401 and 403: then every request would fail on
its key. A process with no default upstream (every route has its own provider) checks the
store only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from guard.errors import ConfigError
from guard.pipeline import Pipeline
from guard.store.threads import in_store_thread


@dataclass
class Readiness:
    """What each check found: ``checks[name]`` is ``{"ok": bool, ...details}``."""

    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(c["ok"] for c in self.checks.values())

    def body(self) -> dict[str, Any]:
        """200: the details; 503: an OpenAI error body naming what is down, and the details."""
        if self.ready:
            return {"status": "ready", "checks": self.checks}
        down = [f"{name}: {c['error']}" for name, c in self.checks.items() if not c["ok"]]
        return {
            "error": {
                "message": "not ready — " + "; ".join(down),
                "type": "service_unavailable",
                "param": None,
                "code": "not_ready",
            },
            "checks": self.checks,
        }


async def _store(pipeline: Pipeline, timeout_s: float) -> dict[str, Any]:
    store = pipeline.store
    ping = getattr(store, "ping", None) or store.count_flags  # a store from before ping()
    try:
        await asyncio.wait_for(in_store_thread(ping), timeout_s)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {timeout_s:g} s"}
    except Exception as exc:  # any failure of a store plugin means "not ready"
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", **await _spooled(pipeline)}
    return {"ok": True, **await _spooled(pipeline)}


async def _spooled(pipeline: Pipeline) -> dict[str, Any]:
    """How many flag records wait in the spool for the store, when any do."""
    waiting = await in_store_thread(pipeline.spool.count)  # reads the folder: off the loop
    return {"spooled": waiting} if waiting else {}


async def _upstream(pipeline: Pipeline, timeout_s: float) -> dict[str, Any] | None:
    try:
        upstream = pipeline.default_upstream
    except ConfigError:
        return None  # no default upstream: the routes have their own
    try:
        raw = await asyncio.wait_for(upstream.get("/models"), timeout_s)
    except TimeoutError:
        return {"ok": False, "error": f"GET /models got no answer within {timeout_s:g} s"}
    except Exception as exc:  # refused, reset, 5xx past the retries: down
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return {"ok": False, "error": f"GET /models failed: {message}"[:500]}
    if raw.status >= 500 or raw.status in (401, 403):
        return {"ok": False, "status": raw.status, "error": f"GET /models answered {raw.status}"}
    return {"ok": True, "status": raw.status}


async def check(pipeline: Pipeline, timeout_s: float) -> Readiness:
    """Run both checks concurrently."""
    store, upstream = await asyncio.gather(
        _store(pipeline, timeout_s), _upstream(pipeline, timeout_s)
    )
    out = Readiness({"store": store})
    if upstream is not None:
        out.checks["upstream"] = upstream
    return out
