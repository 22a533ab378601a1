"""The one exception hierarchy for Tether.

Activities translate these into Temporal ``ApplicationError``s at their boundary (see
``activities.failures``); everything inside works with these typed errors.
"""

from __future__ import annotations


class TetherError(Exception):
    """Base class of every error Tether raises on purpose."""


class ConfigurationError(TetherError):
    """Settings or a policy file are invalid; the message says which field and why."""


class InputError(TetherError):
    """Input given by a user (CLI, API) is invalid; nothing was started."""


class AccessRefusedError(TetherError):
    """The caller may not do this (start this workflow, for this tenant, as this requester).

    Attributes:
        status: The HTTP answer: 403 (not allowed) or 422 (the input names what it may not).
    """

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class RunIdTakenError(InputError):
    """A run with this id was started before: run ids are never reused, whether that run is
    still running or long finished; nothing was started."""


class ServerUnreachableError(TetherError):
    """The Temporal server could not be reached."""


class ProviderError(TetherError):
    """A model provider call failed.

    Attributes:
        provider: Provider name, e.g. ``openai``.
        status_code: HTTP status, when the provider answered.
    """

    retryable: bool = True

    def __init__(self, message: str, *, provider: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code


class ProviderRateLimitedError(ProviderError):
    """429: retry after ``retry_after_s`` seconds (from Retry-After) or a backoff."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = 429,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status_code=status_code)
        self.retry_after_s = retry_after_s


class ProviderUnavailableError(ProviderError):
    """5xx, timeout or connection failure: worth retrying."""


class ProviderRejectedError(ProviderError):
    """400/401/403/404 and similar: retrying cannot help, fail fast."""

    retryable = False


class ProviderCircuitOpenError(ProviderError):
    """The model's circuit breaker is open on this worker: the call was not made. Not retried:
    the route moves on to its next model at once."""

    retryable = False

    def __init__(self, message: str, *, provider: str, model: str) -> None:
        super().__init__(message, provider=provider)
        self.model = model
