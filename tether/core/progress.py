"""A one-line progress display on a terminal: rewritten in place, and silent when the stream is
not a TTY (a pipe or a log file gets only the command's real output).

    progress = ProgressLine(sys.stderr)
    progress.show("classify: running", done=2, total=5)
    progress.clear()
"""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["ProgressLine"]

BAR_WIDTH = 24


class ProgressLine:
    """One status line on ``stream`` (normally stderr), shown only when it is a terminal."""

    def __init__(self, stream: TextIO, *, enabled: bool | None = None) -> None:
        self.stream = stream
        self.enabled = _is_tty(stream) if enabled is None else enabled
        self.started = time.monotonic()
        self._shown = False

    def show(self, text: str, *, done: int | None = None, total: int | None = None) -> None:
        """Replace the line with ``text``, the time since start and, given ``done`` of
        ``total``, a bar."""
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        bar = ""
        if done is not None and total:
            filled = round(BAR_WIDTH * min(done, total) / total)
            bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} "
        self.stream.write(f"\r\x1b[K{bar}{text} ({elapsed:.0f}s)")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Remove the line, so what is printed next starts on a clean line."""
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
