"""Translate Tether's typed errors into Temporal failures at the activity boundary.

Temporal's RetryPolicy is the single retry owner: rate limits carry ``next_retry_delay`` from
Retry-After, transient failures stay retryable, and rejections fail fast.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from tether.core.errors import (
    ConfigurationError,
    ProviderCircuitOpenError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    TetherError,
)

PROVIDER_RATE_LIMITED = "ProviderRateLimited"
PROVIDER_UNAVAILABLE = "ProviderUnavailable"
PROVIDER_REJECTED = "ProviderRejected"
PROVIDER_CIRCUIT_OPEN = "ProviderCircuitOpen"
"""The model's breaker is open: the workflow moves on to the route's next model, no retries."""
CONFIGURATION = "ConfigurationError"
NON_RETRYABLE_TYPES = [PROVIDER_REJECTED, CONFIGURATION]


def to_application_error(error: TetherError, *, model: str | None = None) -> ApplicationError:
    """Map a Tether error to the ApplicationError Temporal should see; ``model``, the model the
    failing call went to, travels as the failure's first detail (see ``failed_model``)."""
    details = (model,) if model else ()
    if isinstance(error, ProviderRateLimitedError):
        delay = timedelta(seconds=error.retry_after_s) if error.retry_after_s else None
        return ApplicationError(
            str(error), *details, type=PROVIDER_RATE_LIMITED, next_retry_delay=delay
        )
    if isinstance(error, ProviderCircuitOpenError):
        return ApplicationError(
            str(error), error.model, type=PROVIDER_CIRCUIT_OPEN, non_retryable=True
        )
    if isinstance(error, ProviderRejectedError):
        return ApplicationError(str(error), *details, type=PROVIDER_REJECTED, non_retryable=True)
    if isinstance(error, ProviderError):
        return ApplicationError(str(error), *details, type=PROVIDER_UNAVAILABLE)
    if isinstance(error, ConfigurationError):
        return ApplicationError(str(error), *details, type=CONFIGURATION, non_retryable=True)
    return ApplicationError(str(error), *details, type=type(error).__name__)


def failed_model(error: ApplicationError) -> str | None:
    """The model a failure from ``to_application_error(..., model=...)`` names, if any."""
    details = error.details
    return details[0] if details and isinstance(details[0], str) else None
