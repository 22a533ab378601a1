"""Connecting to Temporal with Tether's one data converter."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tether.errors import ServerUnreachableError
from tether.settings import Settings

DATA_CONVERTER = pydantic_data_converter
"""Used everywhere: client, worker, replayer and tests."""


async def connect(settings: Settings, *, address: str | None = None) -> Client:
    """Connect to the Temporal frontend, or raise ServerUnreachableError with one clear line."""
    target = address or settings.temporal_address
    try:
        return await Client.connect(
            target, namespace=settings.temporal_namespace, data_converter=DATA_CONVERTER
        )
    except Exception as exc:  # the SDK raises RuntimeError with a long transport message
        raise ServerUnreachableError(
            f"no Temporal server reachable at {target} (start one with `tether dev`)"
        ) from exc
