"""Threads for store calls. A store's methods block, and a store can make them wait long (a file
another process holds locked, a slow or silent database, each up to its timeout): in asyncio's
default thread pool (``min(32, cores + 4)`` threads, 6 on 2 cores), as many waiting calls as it
has threads held up everything else that runs there (a large body's policy checks, a function
upstream) though it needed no store. Store calls have a pool of their own."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="calguard-store")


async def in_store_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread(fn, ...)`` in the store's threads."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_POOL, call)
