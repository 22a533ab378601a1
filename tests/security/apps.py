"""What the security tests share: a policy with one more login, and the review app served in
process (httpx's ASGI transport) over settings whose Temporal is unreachable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from argon2 import PasswordHasher

from policies.models import Reviewer, TetherPolicy
from review_ui.app import create_app
from tether.core.settings import Settings
from tether.store.engine import dispose_all


def with_login(
    policy: TetherPolicy, name: str, password: str, roles: list[str], tenants: list[str]
) -> TetherPolicy:
    """``policy`` with one more reviewer, its password argon2-hashed as a real policy holds it."""
    login = Reviewer.model_validate(
        {
            "name": name,
            "password_hash": PasswordHasher().hash(password),
            "roles": roles,
            "tenants": tenants,
        }
    )
    return policy.model_copy(update={"reviewers": [*policy.reviewers, login]})


def unreachable_temporal(tmp_path: Path) -> Settings:
    """Settings whose Temporal is unreachable: what reaches it answers 503."""
    return Settings.from_env(
        {"TETHER_HOME": str(tmp_path), "TETHER_TEMPORAL_ADDRESS": "127.0.0.1:9"}
    )


@asynccontextmanager
async def app_over(settings: Settings, policy: TetherPolicy) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the review app in this process."""
    app = create_app(settings, policy=policy)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
    ) as http:
        yield http
    dispose_all()
