"""Where the audit log's HMAC key comes from: ``TETHER_AUDIT_KEY``, or in dev a generated file.

The key must live outside the database it protects. Outside ``TETHER_ENV=dev`` it comes from
the environment and nothing else (a missing key refuses to start); in dev, Tether generates one
at ``<TETHER_HOME>/audit.key`` (mode 0600) the first time and reuses it. The head is checkpointed
beside it, in ``<TETHER_HOME>/audit.head``.

Usage, wherever settings open a store (worker, review UI, CLI)::

    configure_audit(settings)
"""

from __future__ import annotations

from sqlmodel import Session

from tether.core.dev_keys import MIN_KEY_CHARS, dev_key
from tether.core.errors import ConfigurationError
from tether.core.settings import Settings
from tether.store.audit import AuditSigner, use_audit_signer
from tether.store.audit_verify import AuditVerdict, verify_log

KEY_FILE = "audit.key"
HEAD_FILE = "audit.head"


def audit_signer(settings: Settings) -> AuditSigner:
    """The signer ``settings`` name.

    Raises:
        ConfigurationError: no key outside dev, a key too short, or a dev key file others can
            read.
    """
    head_file = settings.home / HEAD_FILE
    if settings.audit_key is not None:
        key = settings.audit_key.get_secret_value()
        if len(key) < MIN_KEY_CHARS:
            raise ConfigurationError(
                f"TETHER_AUDIT_KEY must be at least {MIN_KEY_CHARS} characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        return AuditSigner(key=key.encode(), head_file=head_file)
    if settings.env != "dev":
        raise ConfigurationError(
            "TETHER_AUDIT_KEY must be set outside TETHER_ENV=dev (the audit log's HMAC key, "
            "kept outside the database)"
        )
    return AuditSigner(
        key=dev_key(settings.home / KEY_FILE, "the audit log's key"), head_file=head_file
    )


def configure_audit(settings: Settings) -> AuditSigner:
    """Sign the audit log of ``settings``' store with its key in this process."""
    signer = audit_signer(settings)
    use_audit_signer(settings.resolved_database_url, signer)
    return signer


def verify_store(settings: Settings) -> AuditVerdict:
    """``tether audit verify``: check the audit log of ``settings``' store."""
    from tether.store.engine import get_engine

    signer = configure_audit(settings)
    with Session(get_engine(settings.resolved_database_url)) as session:
        return verify_log(session, signer)
