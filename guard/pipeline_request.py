"""One request as :class:`guard.pipeline.Pipeline` carries it from step to step, and how it
commits its flag record."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from guard.checks import Checks, RoutePolicies, record
from guard.config import RouteConfig
from guard.endpoints import Endpoint
from guard.reply import Reply
from guard.request import GuardOptions
from guard.scrub import Scrubber
from guard.store import Store
from guard.store.spool import Spool


@dataclass
class PipelineRequest:
    """One request as the pipeline carries it from step to step."""

    endpoint: Endpoint
    request_id: str
    body: dict[str, Any]  # as it goes upstream: no guard, the upstream model, redactions made
    opts: GuardOptions
    client_model: str
    upstream_model: str
    route: RouteConfig
    policies: RoutePolicies
    checks: Checks
    headers: dict[str, str]  # the reply's
    forward: dict[str, str] = field(default_factory=dict)  # the client's, passed on
    query: str = ""
    scrub: Scrubber | None = None
    caller: str | None = None  # the proxy key it came with: client-chosen keys live under it
    exact: bool = False  # the body goes upstream as the client sent it: its own bytes
    raw: bytes | None = None
    size: int = 0  # the body's bytes as the client sent them
    logged: bool = False  # its flag record is committed

    async def log(
        self, store: Store, key: str | None, response: Any, spool: Spool | None = None
    ) -> None:
        """Commit the flag record; ``spool``: the answer went out, so a store that is down
        sends the record to the spool (else its 503)."""
        self.logged = True
        await record(
            store,
            self.checks,
            route=self.client_model,
            model=self.upstream_model,
            key=key,
            request=self.body,
            response=response,
            scrub=self.scrub,
            spool=spool,
        )


def said(reply: Reply) -> Any:
    """A reply's body for a flag record: its JSON, else its text (cut at 2,000 characters)."""
    try:
        return json.loads(reply.body)
    except ValueError:
        return reply.body[:2000].decode("utf-8", "replace")
