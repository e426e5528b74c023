"""The CoreError tree; HTTP-facing errors carry `status_code`, `code`, `default_detail`."""

from __future__ import annotations

import math
from typing import Any


class CoreError(Exception):
    """Base class of every error the framework raises on purpose."""

    status_code: int = 500
    code: str = "error"
    default_detail: str = "A server error occurred."
    headers: dict[str, str] | None = None

    def __init__(self, detail: Any = None) -> None:
        self.detail = self.default_detail if detail is None else detail
        super().__init__(self.detail)


class NotAuthenticatedError(CoreError, PermissionError):
    """No valid credentials came with a request that needs them (401)."""

    status_code = 401
    code = "not_authenticated"
    default_detail = "Authentication credentials were not provided or are invalid."
    headers = {"WWW-Authenticate": "Bearer"}


class PermissionDeniedError(CoreError, PermissionError):
    """The user is known but may not do this (403)."""

    status_code = 403
    code = "permission_denied"
    default_detail = "You do not have permission to perform this action."


class ValidationFailedError(CoreError, ValueError):
    """A request's parameters or body are invalid (400); `detail` says which and why."""

    status_code = 400
    code = "invalid"
    default_detail = "Invalid input."


class InvalidFilterError(ValidationFailedError):
    """A FilterSet query parameter's value does not convert (400); `field` names the parameter."""

    code = "invalid_filter"

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


class ConfigurationError(CoreError, ValueError):
    """The settings or the wiring are wrong; raised at start-up, never per request."""

    code = "configuration_error"
    default_detail = "Invalid configuration."


class MissingDependencyError(CoreError, ImportError):
    """An adapter was selected whose optional extra is not installed."""

    code = "missing_dependency"

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install 'core-framework[{extra}]'"
        )


class NoActiveContextError(CoreError, RuntimeError):
    """A helper needing the running app's container or session was used outside one."""

    code = "no_active_context"


class AmbiguousContainerError(ConfigurationError):
    """Code outside any request, message or task while two or more apps run in the process:
    which container it means is for `use_container` to say."""

    code = "ambiguous_container"


class NotRunningError(ConfigurationError):
    """Work was sent where nothing in this process would run it: an in-memory task queue or
    event broker whose app is not running. Never a task id for a task that will not run."""

    code = "not_running"


class NotFoundError(CoreError, LookupError):
    """A requested object does not exist."""

    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class MultipleObjectsReturned(CoreError, LookupError):
    """`get()` matched more than one row."""

    status_code = 500
    code = "multiple_objects_returned"


class FieldError(CoreError, ValueError):
    """A query named a field or lookup the model does not have, or a value of the wrong type."""

    status_code = 400
    code = "invalid_field"


class IntegrityViolationError(CoreError, ValueError):
    """A write broke a database constraint. `field` names the column when it is known."""

    status_code = 400
    code = "integrity_error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class UniqueViolationError(IntegrityViolationError):
    """A unique column or constraint already holds the value (409: the body is well formed,
    the rows the database holds refuse it)."""

    status_code = 409
    code = "unique"


class ForeignKeyViolationError(IntegrityViolationError):
    """A foreign key points to a row that does not exist (or still has dependants) (409)."""

    status_code = 409
    code = "foreign_key"


class NotNullViolationError(IntegrityViolationError):
    """A required column got no value, e.g. from a deleted row's dependants (409)."""

    status_code = 409
    code = "not_null"


class BrokerUnavailableError(CoreError, ConnectionError):
    """The message broker could not be reached; the event was not published."""

    status_code = 503
    code = "broker_unavailable"
    default_detail = "The service is temporarily unavailable; try again shortly."


class TokenStoreUnavailableError(CoreError, ConnectionError):
    """The token store (refresh-token rotation and revocation) could not be reached."""

    status_code = 503
    code = "token_store_unavailable"
    default_detail = "Sign-in is temporarily unavailable; try again shortly."
    headers = {"Retry-After": "5"}


class DatabaseUnavailableError(CoreError, ConnectionError):
    """The database could not be reached (refused, dropped or timed-out connections); the
    request's work was not done. Answered 503 with `Retry-After`; the detail (the driver's
    reason) is logged, never sent."""

    status_code = 503
    code = "database_unavailable"
    default_detail = "The service is temporarily unavailable; try again shortly."
    headers = {"Retry-After": "5"}
    #: Set on the first error of an outage: the line to log (which database, and why).
    outage: str | None = None


class TaskQueueUnavailableError(CoreError, ConnectionError):
    """The task queue could not be reached; the task was not enqueued."""

    status_code = 503
    code = "task_queue_unavailable"
    default_detail = "The service is temporarily unavailable; try again shortly."


class RateLimiterUnavailableError(CoreError, ConnectionError):
    """The rate limiter's storage (Redis) could not be reached."""

    status_code = 503
    code = "rate_limiter_unavailable"
    default_detail = "The service is temporarily unavailable; try again shortly."


def _retry_after(seconds: float) -> dict[str, str]:
    # RFC 9110 10.2.3: a whole number of seconds; rounding up never invites an early retry.
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class ThrottledError(CoreError):
    """A client sent more requests than its rate allows (429); `Retry-After` says when to retry.

    Attributes:
        wait: seconds until a request would be allowed again.
    """

    status_code = 429
    code = "throttled"
    default_detail = "Request was throttled."

    def __init__(self, wait: float | None = None, detail: Any = None) -> None:
        if detail is None and wait is not None:
            seconds = max(1, math.ceil(wait))
            detail = f"Request was throttled. Expected available in {seconds} seconds."
        super().__init__(detail)
        self.wait = wait
        self.headers = _retry_after(wait) if wait is not None else None


class ServiceBusyError(CoreError):
    """The server is at capacity (the password-hashing queue is full): 503 with `Retry-After`,
    answered at once instead of making every caller wait."""

    status_code = 503
    code = "service_busy"
    default_detail = "The server is busy; try again shortly."

    def __init__(self, retry_after: float = 1.0, detail: Any = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.headers = _retry_after(retry_after)


class InvalidIdempotencyKeyError(ValidationFailedError):
    """The `Idempotency-Key` header is empty, too long, sent twice or holds characters outside
    visible ASCII (400); `field` names the header."""

    code = "invalid_idempotency_key"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.field = "Idempotency-Key"


class IdempotencyKeyMismatchError(CoreError, ValueError):
    """An `Idempotency-Key` came back with another request than the one it was first used
    with (another body, path or method): 422, nothing done."""

    status_code = 422
    code = "idempotency_key_mismatch"
    default_detail = (
        "This Idempotency-Key was already used with a different request; use a new key for a "
        "new request."
    )


class IdempotencyKeyInUseError(CoreError):
    """A request with this `Idempotency-Key` is still running and did not finish within
    IDEMPOTENCY_WAIT_SECONDS (409 with `Retry-After`): retry, and get its response."""

    status_code = 409
    code = "idempotency_key_in_use"
    default_detail = (
        "A request with this Idempotency-Key is still in progress; retry after a moment."
    )

    def __init__(self, retry_after: float = 1.0, detail: Any = None) -> None:
        super().__init__(detail)
        self.headers = _retry_after(retry_after)


class IdempotencyStoreUnavailableError(CoreError, ConnectionError):
    """The idempotency store (Redis) could not be reached; the request was not run."""

    status_code = 503
    code = "idempotency_store_unavailable"
    default_detail = "The service is temporarily unavailable; try again shortly."
    headers = {"Retry-After": "5"}
