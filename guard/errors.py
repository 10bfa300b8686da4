"""calguard's errors: one small tree, each rendered as an OpenAI-style error body.

    CalguardError                      500 internal_error
    ├── InvalidRequestError            400 invalid_request_error   (bad body, bad guard object)
    ├── PolicyViolationError           400 policy_violation        (a policy blocked it; names it)
    ├── AuthenticationError            401 invalid_request_error   (missing or wrong API key)
    ├── NotFoundError                  404 not_found_error         (unknown route or model)
    ├── RequestTooLargeError           413 invalid_request_error
    ├── UnsupportedMediaTypeError      415 invalid_request_error   (a body coding it cannot read)
    ├── ClientGoneError                499 client_closed_request   (nobody is there to read it)
    ├── UpstreamRejectedError          4xx as the upstream said    (passed back, not retried)
    ├── UpstreamError                  502 upstream_error          (after retries; carries status)
    │   └── UpstreamTimeoutError       504 upstream_timeout
    ├── StoreUnavailableError          503 service_unavailable     (the store is down, slow or
    │                                                               locked; retry later)
    └── ConfigError                    500 config_error            (a bad config file or
                                                                    setting: stops start-up)

Every error carries what it knows (request id, upstream status, attempts) and a message that says
what to do about it. ``to_body()`` is the JSON the client receives.
"""

from __future__ import annotations

from typing import Any


class CalguardError(Exception):
    status = 500
    type = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.request_id = request_id

    def to_body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(CalguardError):
    status = 400
    type = "invalid_request_error"


class PolicyViolationError(CalguardError):
    status = 400
    type = "policy_violation"

    def __init__(self, policy: str, reason: str, *, phase: str, request_id: str | None = None):
        super().__init__(
            f"blocked by policy '{policy}' on the {phase}: {reason}",
            code=policy,
            request_id=request_id,
        )
        self.policy = policy


class AuthenticationError(CalguardError):
    status = 401
    type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_api_key")


class NotFoundError(CalguardError):
    status = 404
    type = "not_found_error"


class RequestTooLargeError(CalguardError):
    status = 413
    type = "invalid_request_error"


class UnsupportedMediaTypeError(CalguardError):
    status = 415
    type = "invalid_request_error"


class ClientGoneError(CalguardError):
    """The client disconnected before its reply was ready; its upstream calls were cancelled."""

    status = 499
    type = "client_closed_request"


class UpstreamError(CalguardError):
    status = 502
    type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        attempts: int = 1,
        code: str | None = "upstream_failed",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, request_id=request_id)
        self.upstream_status = upstream_status
        self.attempts = attempts
        self.headers: dict[str, str] = {}  # calguard's own, on its answer (x-should-retry)


class UpstreamTimeoutError(UpstreamError):
    status = 504
    type = "upstream_timeout"


class StoreUnavailableError(CalguardError):
    """The store (database) did not answer in time, refused the connection or is locked: the
    request needed it (a calibrated question, a flag record) and was not served. Retry later;
    ``GET /readyz`` says when the store is back. Stores raise it instead of their driver's
    errors, so the request path never sees a database library."""

    status = 503
    type = "service_unavailable"

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message, code="store_unavailable", request_id=request_id)
        self.headers = {"retry-after": "1"}  # clients (openai's included) retry after it


class ConfigError(CalguardError):
    """A configuration problem found at start-up; the message names the field to fix."""

    type = "config_error"


class UpstreamRejectedError(CalguardError):
    """The upstream refused the request (a 4xx other than 429): its status and error body are
    passed back as they were, since the fix is on the client's side."""

    type = "invalid_request_error"

    def __init__(self, status: int, body: dict[str, Any] | None, message: str) -> None:
        super().__init__(message, code="upstream_rejected")
        self.status = status
        self.body = body
        self.headers: dict[str, str] = {}  # the upstream's, passed on (Retry-After, ...)

    def to_body(self) -> dict[str, Any]:
        if self.body is not None and isinstance(self.body.get("error"), dict):
            return self.body
        return super().to_body()
