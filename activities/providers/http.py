"""The shared HTTP client for model providers, the one POST they all make, and the mapping of
HTTP failures to ProviderErrors."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from tether.core.errors import (
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from tether.core.settings import Settings

__all__ = [
    "ProviderEndpoint",
    "ProviderReply",
    "classify_http_error",
    "create_http_client",
    "may_have_been_billed",
    "parse_retry_after",
    "wire_name",
]

T = TypeVar("T")

_MAX_MESSAGE_CHARS = 300
# Statuses that mean "the provider is busy or hiccuped": a later attempt may well succeed.
_TRANSIENT_STATUSES = frozenset({408, 409})
# Provider error messages sometimes echo a masked key ("sk-abc***wxyz"); drop such tokens whole.
_MASKED_SECRET = re.compile(r"\S*\*{3,}\S*")
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}")
_NOT_IN_WIRE_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    """Build the one AsyncClient a worker process shares across all provider calls.

    HTTP-level retries are off on purpose: Temporal's retry policy is the single owner of
    retries, so a failed call surfaces at once as a typed ``ProviderError``.

    Args:
        settings: Supplies ``provider_timeout_s``.

    Returns:
        A client the caller must close (``await client.aclose()``) on shutdown.
    """
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30.0)
    transport = httpx.AsyncHTTPTransport(retries=0, limits=limits)
    timeout = httpx.Timeout(
        settings.provider_timeout_s, connect=min(10.0, settings.provider_timeout_s)
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,
        headers={"user-agent": "tether"},
    )


@dataclass(frozen=True)
class ProviderReply:
    """A provider's successful (2xx) answer to one POST, and how long it took."""

    provider: str
    response: httpx.Response
    latency_ms: float

    def read(self, what: str, parse: Callable[[Any], T]) -> T:
        """``parse`` applied to the JSON body; a body it cannot read is a retryable failure.

        Args:
            what: What the body should be, for the message: ``chat completion``, ``message``.
            parse: Reads the decoded JSON; may raise ``KeyError``, ``TypeError`` and the like.
        """
        try:
            return parse(self.response.json())
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            status = self.response.status_code
            raise ProviderUnavailableError(
                f"{self.provider} returned an unreadable {what} (HTTP {status})",
                provider=self.provider,
                status_code=status,
            ) from exc


@dataclass(frozen=True)
class ProviderEndpoint:
    """One provider URL that takes a JSON body, reached through the worker's shared client.

    Args:
        provider: Provider name for errors, e.g. ``openai``.
        client: The worker's shared HTTP client.
        url: The endpoint, e.g. ``https://api.openai.com/v1/chat/completions``.
        api_key: Redacted from every error message.
    """

    provider: str
    client: httpx.AsyncClient
    url: str
    api_key: str

    async def post(self, body: dict[str, Any], headers: Mapping[str, str]) -> ProviderReply:
        """POST ``body``; any failure is raised as the matching ``ProviderError``.

        Raises:
            ProviderError: See ``classify_http_error`` (e.g. Anthropic's 529 "overloaded" is a
                5xx, so it classifies as unavailable, which is retryable).
        """
        started = time.perf_counter()
        try:
            response = await self.client.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise classify_http_error(self.provider, exc, secrets=[self.api_key]) from exc
        latency_ms = (time.perf_counter() - started) * 1000.0
        if not response.is_success:
            raise classify_http_error(self.provider, response, secrets=[self.api_key])
        return ProviderReply(provider=self.provider, response=response, latency_ms=latency_ms)


def classify_http_error(
    provider: str,
    response_or_exception: httpx.Response | BaseException,
    *,
    secrets: Iterable[str] = (),
) -> ProviderError:
    """Turn a failed provider call into the matching ``ProviderError``.

    Args:
        provider: Provider name for the error, e.g. ``openai``.
        response_or_exception: A non-2xx response (body already read) or the exception raised
            while sending the request.
        secrets: Values (API keys) that must never appear in the message.

    Returns:
        ``ProviderRateLimitedError`` for 429, ``ProviderUnavailableError`` for 5xx, 408, 409,
        timeouts and connection failures, ``ProviderRejectedError`` for other client errors.
    """
    if isinstance(response_or_exception, ProviderError):
        return response_or_exception
    if isinstance(response_or_exception, httpx.Response):
        return _classify_response(provider, response_or_exception, tuple(secrets))
    return _classify_exception(provider, response_or_exception, tuple(secrets))


# Failures raised before the request left this process: the provider never saw it.
_NOT_SENT: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


def may_have_been_billed(error: ProviderError) -> bool:
    """Whether a failed call may still be billed by the provider: the request was sent and no
    answer came back (a read or write timeout, a transport or protocol error after sending), or
    a 2xx whose body could not be read. An error the provider answered (4xx, 429, 5xx) is not
    billed: charging a whole hold for every 503 would turn a provider outage into budget stops.
    Connection failures before sending are not billed; neither is a failure with no HTTP
    behind it."""
    status = error.status_code
    if status is not None:
        return 200 <= status < 300
    cause = error.__cause__
    return isinstance(cause, httpx.HTTPError) and not isinstance(cause, _NOT_SENT)


def parse_retry_after(headers: httpx.Headers, *, now: datetime | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` (OpenAI) or ``Retry-After`` (seconds or date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def wire_name(name: str) -> str:
    """A schema or tool name both APIs accept (``^[a-zA-Z0-9_-]{1,64}$``)."""
    return _NOT_IN_WIRE_NAME.sub("_", name)[:64] or "output"


def _classify_response(
    provider: str, response: httpx.Response, secrets: tuple[str, ...]
) -> ProviderError:
    status = response.status_code
    detail = _error_detail(response)
    message = f"{provider} returned HTTP {status}" + (f": {detail}" if detail else "")
    message = _redact(message, secrets)
    if status == 429:
        return ProviderRateLimitedError(
            message,
            provider=provider,
            status_code=status,
            retry_after_s=parse_retry_after(response.headers),
        )
    if status >= 500 or status in _TRANSIENT_STATUSES:
        return ProviderUnavailableError(message, provider=provider, status_code=status)
    return ProviderRejectedError(message, provider=provider, status_code=status)


def _classify_exception(
    provider: str, exc: BaseException, secrets: tuple[str, ...]
) -> ProviderError:
    where = _request_target(exc)
    reason = _one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        message = f"{provider} request timed out{where} ({type(exc).__name__})"
        return ProviderUnavailableError(_redact(message, secrets), provider=provider)
    if isinstance(exc, httpx.UnsupportedProtocol):
        # A base URL without http(s):// is a configuration mistake; retrying cannot fix it.
        message = f"{provider} base URL is not an http(s) URL{where}: {reason}"
        return ProviderRejectedError(_redact(message, secrets), provider=provider)
    if isinstance(exc, httpx.TransportError):
        message = f"{provider} connection failed{where}: {type(exc).__name__}: {reason}"
        return ProviderUnavailableError(_redact(message, secrets), provider=provider)
    message = f"{provider} call failed{where}: {type(exc).__name__}: {reason}"
    return ProviderUnavailableError(_redact(message, secrets), provider=provider)


def _error_detail(response: httpx.Response) -> str:
    """The provider's own error message, from the shapes OpenAI, Anthropic and proxies use."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return ""
    found: object = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            found = error.get("message") or error.get("type")
        elif isinstance(error, str):
            found = error
        found = found or body.get("message") or body.get("detail")
    return _one_line(found) if isinstance(found, str) else ""


def _request_target(exc: BaseException) -> str:
    # Only scheme, host and path: query strings can carry keys for some gateways.
    try:
        url = exc.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return ""
    if not isinstance(url, httpx.URL):
        return ""
    return f" to {url.scheme}://{url.netloc.decode('ascii', 'replace')}{url.path}"


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _MAX_MESSAGE_CHARS:
        flat = flat[: _MAX_MESSAGE_CHARS - 1] + "…"
    return flat


def _redact(message: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[redacted]")
    message = _MASKED_SECRET.sub("[redacted]", message)
    return _KEY_LIKE.sub("[redacted]", message)
