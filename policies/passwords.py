"""Reviewers' passwords as argon2id hashes (``tether hash-password`` makes one)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "password_matches"]

_hasher = PasswordHasher()  # argon2id with the library's recommended cost (RFC 9106, low memory)
# Verified against when the name is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("tether: no such reviewer")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` with a fresh random salt."""
    return _hasher.hash(password)


def password_matches(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches ``password_hash``; with no hash, spends the same time and
    answers False."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
