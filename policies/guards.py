"""The context guard: oversized inputs are truncated, summarised or escalated, never a crash."""

from __future__ import annotations

import re
from typing import Literal, assert_never

from pydantic import BaseModel, ConfigDict

from policies.models import InputGuardPolicy

__all__ = ["GuardAction", "GuardedInput", "chunk_text", "guard_input", "truncation_marker"]

GuardAction = Literal["none", "truncate", "summarize", "escalate"]

_HEAD_SHARE = 2 / 3
"""Truncation keeps more of the start: questions, headers and context come first."""
_SNAP_WINDOW = 200
"""How far a cut may move back to land on whitespace instead of mid-word."""
_MIN_CUT_SHARE = 0.5
"""A chunk may end at a boundary no earlier than this share of its size, or chunks get tiny."""
_BOUNDARIES = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraph
    re.compile(r"\n"),  # line
    re.compile(r"[.!?\u2026][\"')\]\u201d\u2019]*\s+"),  # sentence, maybe closing a quote
    re.compile(r"\s+"),  # word
)


class GuardedInput(BaseModel):
    """An input after the guard: what was done and the text to use."""

    model_config = ConfigDict(frozen=True)

    action: GuardAction
    """``none`` when the input fits; otherwise the policy's ``on_oversize``."""
    text: str
    """The input, truncated for ``truncate``; unchanged otherwise (``summarize`` chunks it)."""
    original_chars: int
    limit_chars: int
    message: str = ""
    """One line for logs and reviewers, e.g. ``input of 30000 characters exceeds 24000``."""


def guard_input(text: str, policy: InputGuardPolicy) -> GuardedInput:
    """Applies the input guard to ``text``.

    Args:
        text: The step's input.
        policy: The effective input guard policy.

    Returns:
        ``none`` with the text unchanged when it fits; otherwise the policy's action. For
        ``truncate`` the text keeps its head and tail around a visible
        ``[... N characters truncated ...]`` marker and fits ``max_input_chars``.
    """
    limit = policy.max_input_chars
    size = len(text)
    if size <= limit:
        return GuardedInput(action="none", text=text, original_chars=size, limit_chars=limit)
    message = f"input of {size} characters exceeds the limit of {limit}"
    action = policy.on_oversize
    if action == "truncate":
        guarded = _truncate(text, limit)
        message += f"; truncated to {len(guarded)}"
    elif action == "summarize":
        guarded = text
        message += "; it will be summarised in chunks"
    elif action == "escalate":
        guarded = text
        message += "; a person must decide how to handle it"
    else:
        assert_never(action)
    return GuardedInput(
        action=action, text=guarded, original_chars=size, limit_chars=limit, message=message
    )


def truncation_marker(removed_chars: int) -> str:
    """The visible marker put where text was cut out."""
    return f"\n\n[... {removed_chars} characters truncated ...]\n\n"


def chunk_text(text: str, max_chars: int, overlap: int = 0) -> list[str]:
    """Splits ``text`` into chunks of at most ``max_chars``, for map-reduce summarisation.

    Cuts prefer paragraph breaks, then line breaks, then sentence ends, then whitespace, and
    fall back to a hard cut. Chunks are contiguous slices: with ``overlap == 0`` they join back
    into ``text`` exactly. With ``overlap`` each chunk after the first starts with the last
    ``overlap`` characters of the text before it, for context across the cut.

    Raises:
        ValueError: ``max_chars`` is not positive, or ``overlap`` is negative or not smaller
            than ``max_chars``.
    """
    if max_chars <= 0:
        raise ValueError(f"max_chars must be > 0, got {max_chars}")
    if not 0 <= overlap < max_chars:
        raise ValueError(f"overlap must be in [0, max_chars), got {overlap}")
    chunks: list[str] = []
    start = 0
    while start < len(text):
        prefix = min(overlap, start)
        end = _cut(text, start, start + max_chars - prefix)
        chunks.append(text[start - prefix : end])
        start = end
    return chunks


def _cut(text: str, start: int, hard_end: int) -> int:
    """The best place in ``text[start:hard_end]`` to end a chunk."""
    if hard_end >= len(text):
        return len(text)
    earliest = start + max(1, int((hard_end - start) * _MIN_CUT_SHARE))
    window = text[start:hard_end]
    for boundary in _BOUNDARIES:
        ends = [start + match.end() for match in boundary.finditer(window)]
        usable = [end for end in ends if earliest <= end <= hard_end]
        if usable:
            return usable[-1]
    return hard_end


def _truncate(text: str, limit: int) -> str:
    room = limit - len(truncation_marker(len(text)))
    if room < 2:
        # No room for a marker and both ends: a plain cut is the only thing that fits.
        return text[:limit]
    head_end = _snap_back(text, int(room * _HEAD_SHARE))
    tail_start = _snap_forward(text, len(text) - (room - int(room * _HEAD_SHARE)))
    removed = tail_start - head_end
    return text[:head_end] + truncation_marker(removed) + text[tail_start:]


def _snap_back(text: str, end: int) -> int:
    """Moves a head cut back to just after whitespace, if some is near."""
    floor = max(end - _SNAP_WINDOW, 1)
    for index in range(end, floor - 1, -1):
        if text[index - 1].isspace():
            return index
    return end


def _snap_forward(text: str, start: int) -> int:
    """Moves a tail cut forward to just after whitespace, if some is near."""
    ceiling = min(start + _SNAP_WINDOW, len(text))
    for index in range(start, ceiling):
        if text[index].isspace():
            return index + 1
    return start
