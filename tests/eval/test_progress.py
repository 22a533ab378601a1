"""The eval progress bar: redrawn in place on a terminal, a plain line per tenth when piped."""

from __future__ import annotations

import io

from tether.evaluation.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_redrawn_on_one_line() -> None:
    stream = Terminal()
    bar = ProgressBar(4, "eval", stream)
    for _ in range(4):
        bar.tick()
    text = stream.getvalue()
    assert text.count("\r") == 4 and text.count("\n") == 1
    assert text.endswith("\reval [" + "#" * 30 + "] 4/4\n")


def test_piped_it_prints_at_most_one_line_per_tenth() -> None:
    stream = io.StringIO()
    bar = ProgressBar(100, "eval", stream)
    for _ in range(100):
        bar.tick()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "eval: 1/100" and lines[-1] == "eval: 100/100"
    assert len(lines) == 11 and "\r" not in stream.getvalue()
