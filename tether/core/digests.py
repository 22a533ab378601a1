"""Digests that bind a human decision to the exact output it was about."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def output_digest(output: dict[str, Any] | None, raw: str = "") -> str:
    """SHA-256 of the canonical JSON of ``output`` (or of ``raw`` text when there is no output)."""
    body = json.dumps(output, sort_keys=True, separators=(",", ":")) if output is not None else raw
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()
