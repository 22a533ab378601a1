"""The audit log's head checkpointed outside the database: a small file beside the store.

Whoever appends writes the new head (seq and hash) here after the commit, only ever forward,
under a file lock, so rows deleted from the database's tail show against it even when the
database's own head row was rolled back with them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HeadMark:
    seq: int
    hash: str


def read_head_file(path: Path) -> HeadMark | None:
    """The head the file holds; None when there is no file yet."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return HeadMark(seq=-1, hash="unreadable")
    return HeadMark(seq=int(data["seq"]), hash=str(data["hash"]))


def advance_head_file(path: Path, seq: int, head_hash: str) -> None:
    """Write ``seq``/``head_hash`` unless the file already holds a later head."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        current = read_head_file(path)
        if current is not None and current.seq >= seq:
            return
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({"seq": seq, "hash": head_hash}))
        with contextlib.suppress(OSError):
            partial.chmod(0o600)
        partial.replace(path)
    finally:
        os.close(fd)
