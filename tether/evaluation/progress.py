"""A progress bar on stderr: redrawn in place on a terminal, a line per tenth when piped."""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label, self.done = max(total, 1), label, 0
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._last_tenth = -1

    def tick(self) -> None:
        self.done += 1
        if self._tty:
            width = 30
            filled = width * self.done // self.total
            bar = "#" * filled + "." * (width - filled)
            end = "\n" if self.done >= self.total else ""
            self._stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}{end}")
        else:
            tenth = 10 * self.done // self.total
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self._stream.write(f"{self.label}: {self.done}/{self.total}\n")
        self._stream.flush()
