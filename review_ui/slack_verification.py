"""Is this request from Slack? Checked before any Slack handler runs, as a dependency.

In order: a signing secret is configured (503), the signature over the raw body is Slack's and
its timestamp is within 5 minutes (401), the same signed request was not taken before by any
replica, restarts included (409: one row per signature in the store), and
the body carries a JSON ``payload`` field (400). Handlers receive only the verified payload.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, HTTPException, Request
from slack_sdk.signature import SignatureVerifier

from review_ui.deps import Desk
from tether.contracts import JsonObject
from tether.store.engine import session_scope
from tether.store.slack_replay import claim_slack_request

__all__ = ["SIGNATURE_WINDOW_S", "SlackPayload", "signature_problem", "verified_slack_payload"]

log = logging.getLogger(__name__)

SIGNATURE_WINDOW_S = 300
"""Slack's replay window: a request signed longer ago than this is refused."""
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")


def signature_problem(
    body: bytes, headers: Mapping[str, str], secret: str, *, now: float | None = None
) -> str | None:
    """Why this request is not a fresh one signed by Slack, or None when it is.

    Slack signs ``v0:{X-Slack-Request-Timestamp}:{raw body}`` with HMAC-SHA256 keyed by the
    app's signing secret and sends ``v0=<hex>`` as ``X-Slack-Signature``.
    """
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
    if not timestamp.isdigit() or len(timestamp) > 12 or not _SIGNATURE.match(signature):
        return "malformed X-Slack-Request-Timestamp or X-Slack-Signature"
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > SIGNATURE_WINDOW_S:
        return "the request timestamp is more than 5 minutes from now"
    expected = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    if expected is None or not hmac.compare_digest(expected.encode(), signature.encode()):
        return "the signature does not match"
    return None


def _first_time(database_url: str, signature: str) -> bool:
    """Whether this signed request is new to every replica: the store keeps one row per
    signature for the replay window, so a restart or a second UI process refuses it too."""
    with session_scope(database_url) as session:
        return claim_slack_request(session, signature, window=timedelta(seconds=SIGNATURE_WINDOW_S))


async def verified_slack_payload(request: Request, desk: Desk) -> JsonObject:
    """The interaction payload of a fresh request signed by Slack.

    Raises:
        HTTPException: 503 without a signing secret, 401 for a bad or stale signature, 409 for a
            replayed request, 400 without a JSON payload.
    """
    body = await request.body()
    secret = desk.settings.slack_signing_secret
    if secret is None or not secret.get_secret_value():
        raise HTTPException(503, "Slack interactions are off: SLACK_SIGNING_SECRET is not set")
    problem = signature_problem(body, request.headers, secret.get_secret_value())
    if problem:
        log.warning("refused a Slack request: %s", problem)
        raise HTTPException(401, f"not a valid Slack request: {problem}")
    signature = request.headers["x-slack-signature"]
    if not await asyncio.to_thread(_first_time, desk.database_url, signature):
        log.warning("refused a replayed Slack request")
        raise HTTPException(409, "this Slack request was already received")
    payload = _payload(body)
    if payload is None:
        raise HTTPException(400, "the body has no JSON payload field")
    return payload


def _payload(body: bytes) -> JsonObject | None:
    try:
        fields = parse_qs(body.decode(), strict_parsing=False)
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


SlackPayload = Annotated[JsonObject, Depends(verified_slack_payload)]
"""The verified payload of a Slack interaction request."""
