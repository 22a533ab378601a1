"""How values read on the pages: due times, ages, money, JSON, reasons and audit events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.templating import Jinja2Templates

REASON_LABELS = {
    "low_confidence": "Low confidence",
    "escalated": "Escalated",
    "blocked": "Blocked",
    "invalid_output": "Invalid output",
    "over_budget": "Over budget",
    "provider_failure": "Provider failure",
    "audit_sample": "Audit",
    "rate_limited": "Rate limited",
    "prompt_injection": "Prompt injection",
}

REASON_EXPLANATIONS = {
    "low_confidence": "The model's confidence is below the level this workflow accepts on its own.",
    "escalated": "Confidence is low enough that the policy escalates it to a reviewer.",
    "blocked": "The output was blocked by policy.",
    "invalid_output": "The model's output did not match the step's schema, even after repairs. "
    "Edit it into shape, retry the step or reject it.",
    "over_budget": "The next step would exceed a budget. Approve the extra spend or stop the run.",
    "provider_failure": "Every model on the route failed. Retry the step or reject it.",
    "audit_sample": "A sample of outputs the workflow accepted on its own; the run did not wait. "
    "Your verdict measures how often auto-accept is right (tether calibrate).",
    "rate_limited": "The step is over a user's or tenant's rate limit. Approve to go on now, "
    "or reject to stop the run.",
    "prompt_injection": "The input looks like an attempt to give the model instructions (score "
    "and rules below); no model has seen it. Approve to run the step on it anyway, or reject "
    "to stop the run.",
}

EVENT_LABELS = {
    "review_opened": "Review opened",
    "review_remind": "Reminder sent",
    "review_escalate": "Escalated",
    "review_default": "Timeout: default action",
    "review_decided": "Decided",
    "review_claimed": "Claimed",
    "review_released": "Released",
    "model_call": "Model call",
    "budget_refused": "Budget refused",
    "budget_spend_approved": "Approved spend reserved",
    "rate_limit": "Held back by a rate limit",
    "provider_cap": "Held back by a provider cap",
    "injection_quarantined": "Input quarantined (prompt injection)",
    "injection_flagged": "Input flagged (prompt injection)",
    "audit_rechained": "Audit log re-chained under its key",
}

DECISION_LABELS = {
    "approve": "Approved",
    "reject": "Rejected",
    "edit": "Edited and approved",
    "retry": "Sent back for a retry",
}


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time in the store is UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def span(delta: timedelta) -> str:
    """A short human duration: 45s, 12m, 3h, 2h 30m, 4d, 4d 6h."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def due_label(due_at: datetime | None, now: datetime | None = None) -> tuple[str, str]:
    """("overdue 2h" | "due in 3h", css class) for a due time."""
    due = as_utc(due_at)
    if due is None:
        return "no due time", "due-none"
    now = now or datetime.now(UTC)
    if due <= now:
        return f"overdue {span(now - due)}", "due-overdue"
    left = due - now
    return f"due in {span(left)}", "due-soon" if left <= timedelta(hours=4) else "due-later"


def age_label(opened_at: datetime | None, now: datetime | None = None) -> str:
    opened = as_utc(opened_at)
    if opened is None:
        return ""
    return f"{span((now or datetime.now(UTC)) - opened)} ago"


def when(moment: datetime | None) -> str:
    moment = as_utc(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def money(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0.00"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def install_filters(templates: Jinja2Templates) -> None:
    env = templates.env
    env.filters.update(
        money=money,
        score=score,
        pretty_json=pretty_json,
        when=when,
        age=age_label,
        reason=lambda r: REASON_LABELS.get(r, str(r).replace("_", " ").capitalize()),
        event=lambda k: EVENT_LABELS.get(k, str(k).replace("_", " ").capitalize()),
        decision=lambda d: DECISION_LABELS.get(d, str(d)),
    )
    env.globals.update(due_label=due_label, reason_explanation=REASON_EXPLANATIONS.get)
