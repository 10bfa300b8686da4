"""``GET /v1/guard/flags``: a page of the flag log, read from the store a few records at a time and
streamed as one JSON object (``{"object": "list", "data": [...], "has_more": ...}``).

A record holds a request and its answer, each up to ``max_body_bytes``: a page held whole (the
rows, the records parsed, the JSON answer) could take the proxy serving traffic out of memory.
The first records are read before the answer starts, so a store that is down is a 503; a store
failing later cuts the answer short (its JSON does not parse), never a page that looks whole.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from guard.errors import CalguardError
from guard.reply import AnswerCutError
from guard.store import Store
from guard.store.threads import in_store_thread

log = logging.getLogger("calguard")
READ_AT_ONCE = 8  # records: a few large ones at most in memory at a time


async def _read(store: Store, filters: dict[str, Any], after: int | None) -> list[dict[str, Any]]:
    return await in_store_thread(store.flags, **filters, limit=READ_AT_ONCE, after=after)


async def page(
    store: Store, *, since: float | None, policy: str | None, limit: int, after: int | None
) -> StreamingResponse:
    """At most ``limit`` records above id ``after``, oldest first; ``has_more``: another page
    follows."""
    filters: dict[str, Any] = {"since": since, "policy": policy}
    first = await _read(store, filters, after)  # a store that is down: a 503, before any byte

    async def body() -> AsyncIterator[bytes]:
        yield b'{"object":"list","data":['
        rows, sent, more = first, 0, False
        while rows:
            for row in rows:
                if sent == limit:
                    more = True
                    break
                yield (b"," if sent else b"") + json.dumps(
                    row, ensure_ascii=False, default=str
                ).encode()
                sent += 1
            if more or len(rows) < READ_AT_ONCE:
                break
            try:
                rows = await _read(store, filters, rows[-1]["id"])
            except CalguardError as exc:  # the status went out: the answer is cut, said once
                log.warning("GET /v1/guard/flags cut after %d records: %s", sent, exc.message)
                raise AnswerCutError(exc.message) from exc
        yield b'],"has_more":' + (b"true" if more else b"false") + b"}"

    return StreamingResponse(body(), media_type="application/json")
