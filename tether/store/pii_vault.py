"""The PII vault: the original values behind a run's placeholders, encrypted at rest.

Redaction replaces each personal value with a placeholder (``[EMAIL_1]``) before the text
reaches Temporal's history, a provider, Slack or the store; the values themselves are kept here,
per run id and tenant, so that the run's final output can be restored when it is read and a
reviewer holding a revealing role can see them. Nothing else in the store holds them.

Each value is sealed with AES-256-GCM under a key from the environment (``TETHER_PII_KEY``; in
dev a generated ``<TETHER_HOME>/pii.key``, mode 0600), outside the database it protects: a copy
of the database alone does not give the values away. The run id, tenant and placeholder are the
associated data, so a sealed value moved to another row or run does not open.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlmodel import Field, Session, SQLModel, col

from tether.core.dev_keys import MIN_KEY_CHARS, dev_key
from tether.core.errors import ConfigurationError
from tether.core.settings import Settings
from tether.store.ledger import insert_once

__all__ = [
    "KEY_FILE",
    "PiiSealer",
    "PiiVaultEntry",
    "keep_originals",
    "pii_sealer",
    "run_originals",
]

KEY_FILE = "pii.key"
_NONCE_BYTES = 12


def _now() -> datetime:
    return datetime.now(UTC)


class PiiVaultEntry(SQLModel, table=True):
    """One placeholder of one run and its sealed original value."""

    __tablename__ = "pii_vault"

    run_id: str = Field(primary_key=True, max_length=200)
    placeholder: str = Field(primary_key=True, max_length=80)
    tenant: str = Field(max_length=100)
    sealed: str
    """base64 of nonce + AES-GCM ciphertext and tag."""
    created_at: datetime = Field(default_factory=_now)


class PiiSealer:
    """Seals and opens vault values with one key."""

    def __init__(self, key: bytes) -> None:
        # The configured key is text of at least 32 characters: hashed to the 32 bytes AES-256 takes.
        self._aead = AESGCM(hashlib.sha256(b"tether-pii-vault\0" + key).digest())

    @staticmethod
    def _associated(run_id: str, tenant: str, placeholder: str) -> bytes:
        return "\0".join((run_id, tenant, placeholder)).encode()

    def seal(self, value: str, *, run_id: str, tenant: str, placeholder: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(
            nonce, value.encode(), self._associated(run_id, tenant, placeholder)
        )
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, *, run_id: str, tenant: str, placeholder: str) -> str:
        """Raises ConfigurationError when the key does not open the value (the key changed)."""
        raw = base64.b64decode(sealed)
        try:
            value = self._aead.decrypt(
                raw[:_NONCE_BYTES],
                raw[_NONCE_BYTES:],
                self._associated(run_id, tenant, placeholder),
            )
        except InvalidTag:
            raise ConfigurationError(
                f"the PII vault's key does not open the values of run {run_id!r} "
                "(was TETHER_PII_KEY changed?)"
            ) from None
        return value.decode()


def pii_sealer(settings: Settings) -> PiiSealer:
    """The sealer ``settings`` name: ``TETHER_PII_KEY``, or in dev a generated key file.

    Raises:
        ConfigurationError: no key outside dev, a key too short, or a dev key file others can
            read.
    """
    configured = settings.pii_key.get_secret_value() if settings.pii_key is not None else None
    return _sealer(configured, settings.env, settings.home / KEY_FILE)


@lru_cache(maxsize=8)
def _sealer(configured: str | None, env: str, key_file: Path) -> PiiSealer:
    if configured is not None:
        if len(configured) < MIN_KEY_CHARS:
            raise ConfigurationError(
                f"TETHER_PII_KEY must be at least {MIN_KEY_CHARS} characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        return PiiSealer(configured.encode())
    if env != "dev":
        raise ConfigurationError(
            "TETHER_PII_KEY must be set outside TETHER_ENV=dev (the key that encrypts the "
            "original values of redacted personal data, kept outside the database)"
        )
    return PiiSealer(dev_key(key_file, "the PII vault's key"))


def keep_originals(
    session: Session, sealer: PiiSealer, run_id: str, tenant: str, mapping: Mapping[str, str]
) -> int:
    """Keep each placeholder's value for ``run_id`` (a placeholder kept before stays as it was);
    returns how many were new."""
    added = 0
    for placeholder, value in mapping.items():
        sealed = sealer.seal(value, run_id=run_id, tenant=tenant, placeholder=placeholder)
        row = PiiVaultEntry(run_id=run_id, placeholder=placeholder, tenant=tenant, sealed=sealed)
        added += insert_once(session, row)
    return added


def run_originals(session: Session, sealer: PiiSealer, run_id: str) -> dict[str, str]:
    """The placeholder -> original value mapping of ``run_id`` (empty when nothing was redacted)."""
    # Columns, not entities: a step reads this before every provider call.
    rows = session.execute(
        select(
            col(PiiVaultEntry.placeholder), col(PiiVaultEntry.tenant), col(PiiVaultEntry.sealed)
        ).where(col(PiiVaultEntry.run_id) == run_id)
    )
    return {
        placeholder: sealer.open(sealed, run_id=run_id, tenant=tenant, placeholder=placeholder)
        for placeholder, tenant, sealed in rows
    }
