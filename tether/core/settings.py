"""Runtime settings, read once from the environment (secrets only ever come from here)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from tether.core.errors import ConfigurationError

DEV_SESSION_SECRET = "tether-dev-session-secret-change-me"


class Settings(BaseModel):
    """Tether's settings. Each field maps to the ``TETHER_*`` variable named in its description."""

    model_config = ConfigDict(frozen=True)

    env: str = Field(default="dev", description="TETHER_ENV: dev or production.")
    home: Path = Field(default=Path(".tether"), description="TETHER_HOME: local state folder.")
    temporal_address: str = Field(default="127.0.0.1:7233", description="TETHER_TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", description="TETHER_TEMPORAL_NAMESPACE")
    task_queue: str = Field(default="tether", description="TETHER_TASK_QUEUE")
    database_url: str | None = Field(
        default=None, description="TETHER_DATABASE_URL; default sqlite:///<home>/tether.db"
    )
    policy_file: Path | None = Field(
        default=None, description="TETHER_POLICY_FILE; default: the embedded policies/default.yaml"
    )
    openai_api_key: SecretStr | None = Field(default=None, description="OPENAI_API_KEY")
    openai_base_url: str = Field(default="https://api.openai.com/v1", description="OPENAI_BASE_URL")
    anthropic_api_key: SecretStr | None = Field(default=None, description="ANTHROPIC_API_KEY")
    anthropic_base_url: str = Field(
        default="https://api.anthropic.com", description="ANTHROPIC_BASE_URL"
    )
    provider_timeout_s: float = Field(default=60.0, gt=0, description="TETHER_PROVIDER_TIMEOUT_S")
    sim_latency_ms: float = Field(default=150.0, ge=0, description="TETHER_SIM_LATENCY_MS")
    sim_failure_rate: float = Field(default=0.0, ge=0, le=1, description="TETHER_SIM_FAILURE_RATE")
    sim_quality: float = Field(default=0.85, ge=0, le=1, description="TETHER_SIM_QUALITY")
    sim_seed: int = Field(default=7, description="TETHER_SIM_SEED")
    slack_bot_token: SecretStr | None = Field(default=None, description="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, description="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", description="SLACK_API_URL")
    slack_default_channel: str = Field(default="#tether-reviews", description="SLACK_CHANNEL")
    ui_host: str = Field(default="127.0.0.1", description="TETHER_UI_HOST")
    ui_port: int = Field(default=8000, description="TETHER_UI_PORT")
    public_url: str = Field(default="http://127.0.0.1:8000", description="TETHER_PUBLIC_URL")
    session_secret: SecretStr = Field(
        default=SecretStr(DEV_SESSION_SECRET), description="TETHER_SESSION_SECRET"
    )

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'tether.db'}"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from environment variables; raise ConfigurationError on bad values."""
        env = dict(os.environ if environ is None else environ)
        names = {
            "env": "TETHER_ENV",
            "home": "TETHER_HOME",
            "temporal_address": "TETHER_TEMPORAL_ADDRESS",
            "temporal_namespace": "TETHER_TEMPORAL_NAMESPACE",
            "task_queue": "TETHER_TASK_QUEUE",
            "database_url": "TETHER_DATABASE_URL",
            "policy_file": "TETHER_POLICY_FILE",
            "openai_api_key": "OPENAI_API_KEY",
            "openai_base_url": "OPENAI_BASE_URL",
            "anthropic_api_key": "ANTHROPIC_API_KEY",
            "anthropic_base_url": "ANTHROPIC_BASE_URL",
            "provider_timeout_s": "TETHER_PROVIDER_TIMEOUT_S",
            "sim_latency_ms": "TETHER_SIM_LATENCY_MS",
            "sim_failure_rate": "TETHER_SIM_FAILURE_RATE",
            "sim_quality": "TETHER_SIM_QUALITY",
            "sim_seed": "TETHER_SIM_SEED",
            "slack_bot_token": "SLACK_BOT_TOKEN",
            "slack_signing_secret": "SLACK_SIGNING_SECRET",
            "slack_api_url": "SLACK_API_URL",
            "slack_default_channel": "SLACK_CHANNEL",
            "ui_host": "TETHER_UI_HOST",
            "ui_port": "TETHER_UI_PORT",
            "public_url": "TETHER_PUBLIC_URL",
            "session_secret": "TETHER_SESSION_SECRET",
        }
        values = {field: env[var] for field, var in names.items() if env.get(var)}
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            var = names.get(str(first["loc"][0]), str(first["loc"][0]))
            raise ConfigurationError(f"{var}: {first['msg']}") from exc
        if (
            settings.env != "dev"
            and settings.session_secret.get_secret_value() == DEV_SESSION_SECRET
        ):
            raise ConfigurationError(
                "TETHER_SESSION_SECRET must be set to a private value outside TETHER_ENV=dev"
            )
        return settings
