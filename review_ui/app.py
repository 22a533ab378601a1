"""The review app: ``create_app`` assembles pages, the JSON API, Slack interactions, the
redelivery of saved decisions, and serves on http://127.0.0.1:8000 by default (``tether ui``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from temporalio.client import Client

from policies.access import production_login_problem
from policies.loader import load_policy
from policies.models import TetherPolicy
from review_ui.auth import LoginRequired
from review_ui.context import STATIC_DIR, TEMPLATES_DIR, ReviewDesk, TemporalLink
from review_ui.decisions import redelivery_loop
from review_ui.display import install_filters
from review_ui.errors import API_PREFIXES, error_body, install_error_handlers
from review_ui.limits import BodyLimits, RequestBodyLimit
from review_ui.routes import router
from review_ui.security_headers import SecurityHeaders
from tether.core.errors import ConfigurationError
from tether.core.settings import Settings
from tether.store.audit_key import configure_audit
from tether.store.engine import get_engine
from tether.store.pii_vault import pii_sealer

log = logging.getLogger(__name__)

_HTML_ERROR_TITLES = {403: "Not allowed", 404: "Not found", 400: "Bad request"}


def create_app(
    settings: Settings | None = None,
    *,
    client: Client | None = None,
    policy: TetherPolicy | None = None,
) -> FastAPI:
    """The review app.

    Args:
        settings: Default ``Settings.from_env()``.
        client: A connected Temporal client; by default the app connects on first use, so the
            queue is readable while Temporal is down.
        policy: Default: the policy file the settings name (or the embedded default).
    """
    settings = settings or Settings.from_env()
    policy = policy or load_policy(settings.policy_file)
    problem = startup_problem(settings, policy)
    if problem is not None:
        raise ConfigurationError(problem)
    configure_audit(settings)  # claims and releases are audited; no key refuses to start
    pii_sealer(settings)  # runs started here keep redacted values in the vault: same rule
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    install_filters(templates)
    desk = ReviewDesk(
        settings=settings,
        policy=policy,
        temporal=TemporalLink(settings, client),
        templates=templates,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(get_engine, desk.database_url)  # creates the tables once
        courier = asyncio.create_task(
            redelivery_loop(desk.temporal.get, database_url=desk.database_url),
            name="decision-redelivery",
        )
        try:
            yield
        finally:
            courier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await courier

    app = FastAPI(
        title="Tether review",
        summary="Review queue and integration API of Tether's human review gate.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.desk = desk
    # Bodies over the limit are refused before authentication or Slack's check reads them; the
    # security headers, outermost, go on every response, a 413 included.
    limits = BodyLimits(default=settings.max_body_bytes, slack=settings.slack_max_body_bytes)
    app.add_middleware(RequestBodyLimit, limits=limits)
    app.add_middleware(SecurityHeaders, settings=settings)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={_quote(exc.next_path)}", status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith(API_PREFIXES):
            if isinstance(exc.__cause__, RecursionError):  # FastAPI's JSON parse of the body
                return error_body(422, "body: JSON nested too deeply")
            return error_body(exc.status_code, str(exc.detail), exc.headers)
        context = {"title": _HTML_ERROR_TITLES.get(exc.status_code, "Error"), "message": exc.detail}
        return templates.TemplateResponse(
            request, "error.html", context, status_code=exc.status_code
        )

    install_error_handlers(app)
    return app


def startup_problem(settings: Settings, policy: TetherPolicy) -> str | None:
    """Why the review app may not serve with these settings and logins, or None.

    Outside ``TETHER_ENV=dev``: not with the default or a short session secret, nor with a
    plaintext password or the embedded dev logins (whose passwords the README publishes).
    """
    if settings.env == "dev":
        return None
    return settings.production_problem() or production_login_problem(policy, load_policy())


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
