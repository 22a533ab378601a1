"""Large texts (documents, chunks) kept in the store and passed through Temporal by reference."""

from __future__ import annotations

import hashlib

from sqlmodel import Field, Session, SQLModel

from tether.store.ledger import insert_once


class StoredText(SQLModel, table=True):
    __tablename__ = "stored_texts"

    key: str = Field(primary_key=True, max_length=80)
    text: str


def put_text(session: Session, text: str) -> str:
    """Store ``text`` under its content hash (idempotent) and return the key."""
    key = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    if session.get(StoredText, key) is None:
        insert_once(session, StoredText(key=key, text=text))
    return key


def get_text(session: Session, key: str) -> str:
    row = session.get(StoredText, key)
    if row is None:
        raise KeyError(f"no stored text {key}")
    return row.text
