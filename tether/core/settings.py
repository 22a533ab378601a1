"""Runtime settings, read once from the environment and ``.env`` (secrets only ever come from
there, never from a file in the repository or a request)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from tether.core.errors import ConfigurationError

DEV_SESSION_SECRET = "tether-dev-session-secret-change-me"
MIN_SESSION_SECRET_CHARS = 32
ENV_PREFIX = "TETHER_"


class Settings(BaseSettings):
    """Tether's settings: each field is read from ``TETHER_<FIELD>``, or from the variable its
    alias names (``OPENAI_API_KEY``, ``SLACK_CHANNEL``, ...). Empty variables count as unset.

    Build them with ``from_env``; ``Settings(field=value)`` takes only its arguments.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        extra="ignore",  # a .env file may hold variables of other tools
        validate_by_name=True,
        validate_by_alias=True,
    )

    env: str = Field(default="dev", description="dev or production")
    home: Path = Field(default=Path(".tether"), description="local state folder")
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "tether"
    database_url: str | None = Field(default=None, description="default sqlite:///<home>/tether.db")
    policy_file: Path | None = Field(
        default=None, description="default: the embedded policies/default.yaml"
    )
    openai_api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    openai_base_url: str = Field(default="https://api.openai.com/v1", alias="OPENAI_BASE_URL")
    anthropic_api_key: SecretStr | None = Field(default=None, alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str = Field(default="https://api.anthropic.com", alias="ANTHROPIC_BASE_URL")
    provider_timeout_s: float = Field(default=60.0, gt=0)
    sim_latency_ms: float = Field(default=150.0, ge=0)
    sim_failure_rate: float = Field(default=0.0, ge=0, le=1)
    sim_quality: float = Field(default=0.85, ge=0, le=1)
    sim_seed: int = 7
    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    slack_default_channel: str = Field(default="#tether-reviews", alias="SLACK_CHANNEL")
    worker_shutdown_grace_s: float = Field(
        default=25.0,
        ge=0,
        description="on SIGTERM, how long running activities may still finish (below the "
        "container's stop grace period)",
    )
    ui_host: str = "127.0.0.1"
    ui_public_in_dev: bool = Field(
        default=False,
        description="in TETHER_ENV=dev, allow serving the UI (dev logins) on a non-loopback host",
    )
    ui_port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    session_secret: SecretStr = SecretStr(DEV_SESSION_SECRET)
    max_body_bytes: int = Field(default=1_048_576, gt=0, description="largest HTTP request body")
    slack_max_body_bytes: int = Field(
        default=262_144, gt=0, description="largest body of a Slack interaction request"
    )
    trust_proxy: bool = Field(
        default=False,
        description="behind a reverse proxy: take the client's address from X-Forwarded-For "
        "and https from X-Forwarded-Proto",
    )
    service_identity: str = Field(
        default="tether-cli",
        min_length=1,
        max_length=200,
        description="the requester of runs started with `tether run`",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="when set, /metrics asks for it as a bearer token"
    )
    tracing: bool = Field(
        default=False,
        description="OpenTelemetry spans for runs, steps and decisions (see tether.tracing)",
    )
    audit_key: SecretStr | None = Field(
        default=None, description="HMAC key of the audit log; required outside dev"
    )
    pii_key: SecretStr | None = Field(
        default=None, description="key of the PII vault's encryption; required outside dev"
    )

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'tether.db'}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the process's environment and ``./.env`` (the environment wins),
        or from ``environ`` alone when given. Raise ConfigurationError, in one line naming the
        variable, on a bad value."""
        token = _environment.set(_ProcessEnvironment() if environ is None else dict(environ))
        try:
            settings = cls()
        except ValidationError as exc:
            first = exc.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else "settings"
            raise ConfigurationError(f"{variable_of(name)}: {first['msg']}") from None
        finally:
            _environment.reset(token)
        problem = settings.production_problem()
        if problem is not None:
            raise ConfigurationError(problem)
        return settings

    def production_problem(self) -> str | None:
        """Why these settings may not run outside ``TETHER_ENV=dev``, or None (always None in
        dev). The policy's logins are checked where the policy is loaded."""
        if self.env == "dev":
            return None
        secret = self.session_secret.get_secret_value()
        if secret == DEV_SESSION_SECRET:
            return "TETHER_SESSION_SECRET must be set to a private value outside TETHER_ENV=dev"
        if len(secret) < MIN_SESSION_SECRET_CHARS:
            return (
                f"TETHER_SESSION_SECRET must be at least {MIN_SESSION_SECRET_CHARS} characters "
                "outside TETHER_ENV=dev (e.g. `openssl rand -hex 32`)"
            )
        return None

    def ui_bind_problem(self) -> str | None:
        """Why the UI may not bind ``ui_host``, or None: in dev (published logins, default
        secret) only loopback, unless ``TETHER_UI_PUBLIC_IN_DEV`` says so."""
        if self.env != "dev" or self.ui_public_in_dev or _is_loopback(self.ui_host):
            return None
        return (
            f"TETHER_ENV=dev serves the published dev logins: refusing to bind the UI to "
            f"{self.ui_host} (use 127.0.0.1, set TETHER_ENV=production, or TETHER_UI_PUBLIC_IN_DEV=1)"
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = _environment.get()
        if given is None:  # Settings(field=value): its arguments only, as in tests
            return (init_settings,)
        environment: Mapping[str, str | None] = given if isinstance(given, dict) else _process()
        return (init_settings, _GivenEnvironment(settings_cls, environment))


def _process() -> dict[str, str | None]:
    """The process's environment over ``./.env``: the environment wins."""
    return {**dotenv_values(".env"), **os.environ}


def variable_of(field: str) -> str:
    """The environment variable a field (or an alias already) is read from."""
    info: FieldInfo | None = Settings.model_fields.get(field)
    if info is None:
        return field
    return info.alias or f"{ENV_PREFIX}{field.upper()}"


class _ProcessEnvironment:
    """Marks ``from_env()`` without an explicit environment: read os.environ and ``.env``."""


_environment: ContextVar[_ProcessEnvironment | dict[str, str] | None] = ContextVar(
    "tether_settings_environment", default=None
)


class _GivenEnvironment(EnvSettingsSource):
    """Environment variables handed to ``Settings.from_env`` instead of the process's own."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str | None]) -> None:
        # Only the documented names, spelt exactly: `tether_env` or `TETHER_OPENAI_API_KEY` are
        # somebody else's variables and must not switch production on or hand over a key.
        documented = {variable_of(name) for name in Settings.model_fields}
        self._given = {k: v for k, v in environ.items() if k in documented and v is not None}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._given, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def _is_loopback(host: str) -> bool:
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
