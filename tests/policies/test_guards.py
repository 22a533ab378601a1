"""The context guard and the chunking behind map-reduce summaries."""

from __future__ import annotations

import re

import pytest

from policies.guards import chunk_text, guard_input
from policies.models import InputGuardPolicy

MARKER = re.compile(r"\[\.\.\. (\d+) characters truncated \.\.\.\]")


def words(count: int) -> str:
    return " ".join(f"word{i}" for i in range(count))


def test_input_within_the_limit_is_untouched() -> None:
    text = words(100)
    guarded = guard_input(text, InputGuardPolicy(max_input_chars=len(text)))
    assert (guarded.action, guarded.text, guarded.original_chars) == ("none", text, len(text))


@pytest.mark.parametrize("limit", [1000, 1501, 2000, 2003, 2005, 2007])
def test_truncate_keeps_head_and_tail_within_the_limit_with_a_marker(limit: int) -> None:
    text = words(5000)  # about 44,000 characters
    guarded = guard_input(text, InputGuardPolicy(max_input_chars=limit, on_oversize="truncate"))
    assert guarded.action == "truncate"
    assert guarded.original_chars == len(text)
    assert len(guarded.text) <= limit
    match = MARKER.search(guarded.text)
    assert match is not None
    head = guarded.text[: match.start()].rstrip("\n")
    tail = guarded.text[match.end() :].lstrip("\n")
    assert text.startswith(head) and text.endswith(tail)
    assert len(head) > len(tail) > 0
    # The marker counts exactly what was cut out.
    assert int(match.group(1)) == len(text) - len(head) - len(tail)
    # Cuts land between words.
    assert head.endswith(" ") and text[len(text) - len(tail) - 1] == " "
    assert guarded.message == (
        f"input of {len(text)} characters exceeds the limit of {limit}; "
        f"truncated to {len(guarded.text)}"
    )


def test_truncate_with_a_tiny_limit_still_fits() -> None:
    guarded = guard_input("x" * 100, InputGuardPolicy(max_input_chars=10))
    assert guarded.action == "truncate"
    assert guarded.text == "x" * 10


@pytest.mark.parametrize("action", ["summarize", "escalate"])
def test_summarize_and_escalate_keep_the_text_for_the_workflow(action: str) -> None:
    text = words(1000)
    policy = InputGuardPolicy.model_validate({"max_input_chars": 100, "on_oversize": action})
    guarded = guard_input(text, policy)
    assert guarded.action == action
    assert guarded.text == text
    assert f"input of {len(text)} characters exceeds the limit of 100" in guarded.message


def document() -> str:
    paragraphs = []
    for p in range(12):
        sentences = [f"Paragraph {p} sentence {s} says something useful." for s in range(8)]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


@pytest.mark.parametrize("max_chars", [50, 200, 450, 1000, 5000, 100_000])
def test_chunks_join_back_into_the_text_and_respect_the_limit(max_chars: int) -> None:
    text = document()
    chunks = chunk_text(text, max_chars)
    assert "".join(chunks) == text
    assert all(0 < len(chunk) <= max_chars for chunk in chunks)


def test_chunks_end_on_paragraph_breaks_when_they_can() -> None:
    text = document()
    longest = max(len(paragraph) for paragraph in text.split("\n\n")) + 2
    chunks = chunk_text(text, longest * 2)
    assert all(chunk.endswith("\n\n") for chunk in chunks[:-1])
    assert len(chunks) == 6  # two whole paragraphs each


def test_chunks_fall_back_to_sentence_ends() -> None:
    text = document()
    chunks = chunk_text(text, 200)
    assert all(chunk.rstrip().endswith(".") for chunk in chunks[:-1])


def test_text_without_boundaries_is_cut_hard() -> None:
    assert chunk_text("a" * 25, 10) == ["a" * 10, "a" * 10, "a" * 5]
    assert chunk_text("", 10) == []


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    text = document()
    chunks = chunk_text(text, 300, overlap=40)
    assert all(len(chunk) <= 300 for chunk in chunks)
    rebuilt = chunks[0]
    for chunk in chunks[1:]:
        assert chunk[:40] == rebuilt[-40:]
        rebuilt += chunk[40:]
    assert rebuilt == text


@pytest.mark.parametrize(("max_chars", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_chunk_sizes_are_refused(max_chars: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("text", max_chars, overlap)


def test_chunks_are_filled_to_the_last_boundary_that_fits() -> None:
    # Fewer, fuller chunks mean fewer summarisation calls.
    text = " ".join(f"Sentence {i} says something useful." for i in range(200))
    sentence = len("Sentence 199 says something useful. ")
    chunks = chunk_text(text, 450)
    assert all(len(chunk) > 450 - sentence for chunk in chunks[:-1])
    assert all(chunk.endswith(". ") for chunk in chunks[:-1])
