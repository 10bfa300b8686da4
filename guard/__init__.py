"""calguard: calibrate and guard LLM outputs, as an OpenAI-compatible proxy or in-process.

``guard`` owns every side effect (files, HTTP, time, seeds); the math lives in ``calibrators``
and the checks in ``policies``. In-process use::

    import guard
    client = guard.wrap(OpenAI())
    @guard.calibrated(calibration="pride")
    def ask(messages, **kw): ...

The proxy: ``guard.create_app(guard.Settings(upstream=...))`` or ``calguard serve``.
"""

from guard.calibrations import register_calibration
from guard.client import calibrated, wrap
from guard.config import RouteConfig, Settings, load_settings
from guard.errors import (
    AuthenticationError,
    CalguardError,
    ConfigError,
    InvalidRequestError,
    NotFoundError,
    PolicyViolationError,
    RequestTooLargeError,
    StoreUnavailableError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
)
from guard.server import create_app
from guard.store import register_store
from guard.upstreams import register_upstream

__all__ = [
    "AuthenticationError",
    "CalguardError",
    "ConfigError",
    "InvalidRequestError",
    "NotFoundError",
    "PolicyViolationError",
    "RequestTooLargeError",
    "RouteConfig",
    "Settings",
    "StoreUnavailableError",
    "UpstreamError",
    "UpstreamRejectedError",
    "UpstreamTimeoutError",
    "calibrated",
    "create_app",
    "load_settings",
    "register_calibration",
    "register_store",
    "register_upstream",
    "wrap",
]
