"""What the engine benchmarks run: the tickets and the policy variants."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml

from policies.loader import load_policy
from workflows.support_triage_steps import Ticket

T = TypeVar("T")

_TICKETS = (
    ("Refund for order {n}", "I was charged twice for order A-{n}. Please refund the duplicate."),
    ("App crashes on login", "Since the update the app crashes with error {n} when I log in."),
    ("Where is my package?", "Tracking for parcel {n} has not moved in a week. Any news?"),
    ("Password reset", "I cannot reset my password; the link for account {n} has expired."),
    ("Invoice question", "Invoice INV-{n} shows a price different from my subscription plan."),
)


def ticket(n: int) -> Ticket:
    """A realistic, distinct support ticket; distinct texts keep the simulated answers varied."""
    subject, body = _TICKETS[n % len(_TICKETS)]
    return Ticket(
        subject=subject.format(n=n),
        body=body.format(n=n),
        customer_id=f"customer-{n % 50}",
        tenant="bench",
    )


def write_policy(path: Path, *, accept: float, one_call: bool = False) -> Path:
    """Write the default policy with every confidence threshold moved, and validate it.

    Args:
        path: Where to write the YAML.
        accept: The accept threshold; review and escalate are 0 so nothing is ever blocked.
            0 accepts every valid step; 1.0 sends every step to review.
        one_call: Turn off the judge and self-consistency samples, so each step makes one
            model call instead of the default policy's two to four.

    Returns:
        ``path``.
    """
    text = resources.files("policies").joinpath("default.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data["confidence"]["thresholds"] = {"accept": accept, "review": 0.0, "escalate": 0.0}
    step_policies = [data["confidence"]]
    for section in (data.get("workflows") or {}).values():
        for step in (section.get("steps") or {}).values():
            step.pop("thresholds", None)  # the top-level thresholds must apply everywhere
            step_policies.append(step)
    # The engine benches measure orchestration: the step cache would answer the tickets' repeats
    # (bench/bench_cache.py measures the cache).
    data["cache"]["enabled"] = False
    if one_call:
        for step in step_policies:
            step["judge"], step["samples"] = False, 1
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_policy(path)
    return path


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``, by linear interpolation."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def gather_in_batches(calls: Sequence[Callable[[], Awaitable[T]]], batch: int) -> list[T]:
    """Await ``calls`` ``batch`` at a time, keeping their order in the result."""
    results: list[T] = []
    for start in range(0, len(calls), batch):
        results += await asyncio.gather(*(call() for call in calls[start : start + batch]))
    return results
