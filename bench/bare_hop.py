"""The limit row of ``bench/proxy_overhead.py``: a bare FastAPI + aiohttp forwarding hop, no
checks, no parsing — what any Python proxy on this stack cannot beat.

    UPSTREAM=http://127.0.0.1:PORT/v1 uvicorn bench.bare_hop:app --port P
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI, Request
from fastapi.responses import Response

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:8000/v1")
session: dict[str, aiohttp.ClientSession] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    session["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    yield
    await session["s"].close()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/chat/completions")
async def chat(request: Request) -> Response:
    body = await request.body()
    async with session["s"].post(
        f"{UPSTREAM}/chat/completions", data=body, headers={"content-type": "application/json"}
    ) as r:
        return Response(await r.read(), r.status, media_type="application/json")


@app.get("/v1/models")
async def models() -> Response:
    async with session["s"].get(f"{UPSTREAM}/models") as r:
        return Response(await r.read(), r.status, media_type="application/json")
