"""Keys generated for ``TETHER_ENV=dev`` only: a random key kept in a file of ``TETHER_HOME``
that only its owner may read (the audit log's, the PII vault's)."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from tether.core.errors import ConfigurationError

__all__ = ["MIN_KEY_CHARS", "dev_key"]

MIN_KEY_CHARS = 32


def dev_key(path: Path, holds: str) -> bytes:
    """The key in ``path``, made on first use (``holds``: what the key protects, for errors).

    Raises:
        ConfigurationError: The file is readable by others, or holds no usable key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise ConfigurationError(
                f"{path} is readable by others: chmod 600 it (it holds {holds})"
            ) from None
        key = path.read_text().strip()
        if len(key) < MIN_KEY_CHARS:
            raise ConfigurationError(f"{path} holds no usable key ({holds})") from None
        return key.encode()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode()
