"""Translate Tether's typed errors into Temporal failures at the activity boundary.

Temporal's RetryPolicy is the single retry owner: rate limits carry ``next_retry_delay`` from
Retry-After, transient failures stay retryable, and rejections fail fast.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from tether.errors import (
    ConfigurationError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    TetherError,
)

PROVIDER_RATE_LIMITED = "ProviderRateLimited"
PROVIDER_UNAVAILABLE = "ProviderUnavailable"
PROVIDER_REJECTED = "ProviderRejected"
CONFIGURATION = "ConfigurationError"
NON_RETRYABLE_TYPES = [PROVIDER_REJECTED, CONFIGURATION]


def to_application_error(error: TetherError) -> ApplicationError:
    """Map a Tether error to the ApplicationError Temporal should see."""
    if isinstance(error, ProviderRateLimitedError):
        delay = timedelta(seconds=error.retry_after_s) if error.retry_after_s else None
        return ApplicationError(str(error), type=PROVIDER_RATE_LIMITED, next_retry_delay=delay)
    if isinstance(error, ProviderRejectedError):
        return ApplicationError(str(error), type=PROVIDER_REJECTED, non_retryable=True)
    if isinstance(error, ProviderError):
        return ApplicationError(str(error), type=PROVIDER_UNAVAILABLE)
    if isinstance(error, ConfigurationError):
        return ApplicationError(str(error), type=CONFIGURATION, non_retryable=True)
    return ApplicationError(str(error), type=type(error).__name__)
