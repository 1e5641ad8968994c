"""The project's exception hierarchy and its mapping to Mastodon-style JSON errors.

Domain code raises these; one middleware (``twitter_shared.web``) turns them into
``{"error": "..."}`` responses. Library exceptions are wrapped where they happen,
chained with ``from``, so no SQLAlchemy or aiohttp error text reaches a client.
"""

from __future__ import annotations

from typing import Any

RECORD_NOT_FOUND = "Record not found"


class ServiceError(Exception):
    """Base of every error a request can end in; ``status`` is its HTTP status."""

    status = 500
    default_message = "Internal server error"

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(ServiceError):
    status = 400
    default_message = "Bad request"


class Unauthorized(ServiceError):
    status = 401
    default_message = "The access token is invalid"


class Forbidden(ServiceError):
    status = 403
    default_message = "This action is not allowed"


class NotFound(ServiceError):
    status = 404
    default_message = RECORD_NOT_FOUND


class Conflict(ServiceError):
    status = 409
    default_message = "Conflict"


class PayloadTooLarge(ServiceError):
    status = 413
    default_message = "Request body too large"


class ValidationFailed(ServiceError):
    status = 422
    default_message = "Validation failed"


class RateLimited(ServiceError):
    status = 429
    default_message = "Too many requests"


class Unavailable(ServiceError):
    """A dependency (database or another service) did not respond, so retrying later may work."""

    status = 503
    default_message = "Service temporarily unavailable"


class UpstreamError(ServiceError):
    """Another service returned a response we cannot use."""

    status = 502
    default_message = "Bad gateway"


def error_for_status(status: int, body: dict[str, Any] | None) -> ServiceError:
    """Rebuild the error an internal service returned, so the gateway can pass it on unchanged."""
    by_status: dict[int, type[ServiceError]] = {
        400: BadRequest,
        401: Unauthorized,
        403: Forbidden,
        404: NotFound,
        409: Conflict,
        413: PayloadTooLarge,
        422: ValidationFailed,
        429: RateLimited,
        503: Unavailable,
    }
    error_type = by_status.get(status, UpstreamError)
    message = body.get("error") if isinstance(body, dict) else None
    details = body.get("details") if isinstance(body, dict) else None
    return error_type(message if isinstance(message, str) else None, details=details)
