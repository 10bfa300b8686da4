"""When calguard asks the upstream again, and what it says when it stops: the OpenAI SDK's
rule (408, 409, 429, 5xx, ``x-should-retry``), ``Retry-After`` honoured and capped, and
``x-should-retry: false`` on an answer calguard already retried (:data:`NO_MORE`)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping

import aiohttp
from tenacity import RetryCallState, wait_exponential_jitter

from guard.errors import UpstreamError
from guard.upstreams.base import RawResponse


def should_retry(status: int, headers: Mapping[str, str], body: bytes = b"") -> bool:
    """The OpenAI SDK's rule: the upstream's ``x-should-retry`` if it says, else 408, 409, 429
    and 5xx — but not a 5xx that says the request is not supported (llama.cpp answers 500
    "logprobs is not supported"): asking again gets the same answer."""
    said = headers.get("x-should-retry", "").lower()
    if said in ("true", "false"):
        return said == "true"
    if status >= 500 and b"not supported" in body[:2000].lower():
        return False
    return status in (408, 409, 429) or status >= 500


class RetryableStatus(Exception):
    """An upstream answer worth retrying; carries it for Retry-After and for the last word."""

    def __init__(self, response: RawResponse) -> None:
        super().__init__(f"upstream answered {response.status}")
        self.response = response


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryableStatus | aiohttp.ClientError | asyncio.TimeoutError)


def retry_after(exc: BaseException | None) -> float | None:
    if isinstance(exc, RetryableStatus):
        value = exc.response.headers.get("retry-after")
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


class Wait:
    """Retry-After when the upstream names it (capped), else exponential backoff with jitter."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait
        self.backoff = wait_exponential_jitter(multiplier=0.1, max=max_wait)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = retry_after(exc)
        return min(after, self.max_wait) if after is not None else self.backoff(state)


# Said on an answer calguard retried until its retries ran out: the client's SDK would
# otherwise retry it as well, each of its attempts being max_attempts of calguard's (one
# create() of the openai SDK, LiteLLM's or LangChain's met 429s with 9 upstream calls, not 3).
NO_MORE = {"x-should-retry": "false"}


def given_up(raw: RawResponse, attempts: int) -> RawResponse:
    """The last answer, once calguard's retries ran out: with :data:`NO_MORE` where calguard
    asked more than once (asked once, the client's retries are the only ones, as directly)."""
    return raw if attempts < 2 else dataclasses.replace(raw, headers={**raw.headers, **NO_MORE})


def retried_enough(err: UpstreamError) -> UpstreamError:
    """``err`` (no answer came) with :data:`NO_MORE` where calguard asked more than once."""
    if err.attempts > 1:
        err.headers = {**err.headers, **NO_MORE}
    return err
