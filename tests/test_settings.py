"""Settings: the variable names and defaults of the README's Configuration table, ``.env``
files, and a bad value reported in one line naming its variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from tether.cli import main
from tether.core.errors import ConfigurationError
from tether.core.settings import DEV_SESSION_SECRET, Settings

# variable -> (attribute, value to set, what the attribute then reads)
VARIABLES: dict[str, tuple[str, str, object]] = {
    "TETHER_ENV": ("env", "staging", "staging"),
    "TETHER_HOME": ("home", "/srv/tether", Path("/srv/tether")),
    "TETHER_TEMPORAL_ADDRESS": ("temporal_address", "t:7233", "t:7233"),
    "TETHER_TEMPORAL_NAMESPACE": ("temporal_namespace", "ns", "ns"),
    "TETHER_TASK_QUEUE": ("task_queue", "q", "q"),
    "TETHER_DATABASE_URL": (
        "database_url",
        "postgresql+psycopg://db/t",
        "postgresql+psycopg://db/t",
    ),
    "TETHER_POLICY_FILE": ("policy_file", "p.yaml", Path("p.yaml")),
    "OPENAI_API_KEY": ("openai_api_key", "sk-1", SecretStr("sk-1")),
    "OPENAI_BASE_URL": ("openai_base_url", "http://vllm/v1", "http://vllm/v1"),
    "ANTHROPIC_API_KEY": ("anthropic_api_key", "ak-1", SecretStr("ak-1")),
    "ANTHROPIC_BASE_URL": ("anthropic_base_url", "http://a", "http://a"),
    "TETHER_PROVIDER_TIMEOUT_S": ("provider_timeout_s", "5", 5.0),
    "TETHER_SIM_LATENCY_MS": ("sim_latency_ms", "0", 0.0),
    "TETHER_SIM_FAILURE_RATE": ("sim_failure_rate", "0.5", 0.5),
    "TETHER_SIM_QUALITY": ("sim_quality", "0.9", 0.9),
    "TETHER_SIM_SEED": ("sim_seed", "3", 3),
    "SLACK_BOT_TOKEN": ("slack_bot_token", "xoxb-1", SecretStr("xoxb-1")),
    "SLACK_SIGNING_SECRET": ("slack_signing_secret", "s", SecretStr("s")),
    "SLACK_API_URL": ("slack_api_url", "http://slack/api/", "http://slack/api/"),
    "SLACK_CHANNEL": ("slack_default_channel", "#r", "#r"),
    "TETHER_WORKER_SHUTDOWN_GRACE_S": ("worker_shutdown_grace_s", "10", 10.0),
    "TETHER_UI_HOST": ("ui_host", "0.0.0.0", "0.0.0.0"),
    "TETHER_UI_PUBLIC_IN_DEV": ("ui_public_in_dev", "true", True),
    "TETHER_UI_PORT": ("ui_port", "9000", 9000),
    "TETHER_PUBLIC_URL": ("public_url", "https://t.example", "https://t.example"),
    "TETHER_MAX_BODY_BYTES": ("max_body_bytes", "2048", 2048),
    "TETHER_SLACK_MAX_BODY_BYTES": ("slack_max_body_bytes", "1024", 1024),
    "TETHER_SESSION_SECRET": ("session_secret", "p" * 32, SecretStr("p" * 32)),
    "TETHER_TRUST_PROXY": ("trust_proxy", "true", True),
    "TETHER_SERVICE_IDENTITY": ("service_identity", "ops-bot", "ops-bot"),
    "TETHER_AUDIT_KEY": ("audit_key", "k" * 32, SecretStr("k" * 32)),
    "TETHER_PII_KEY": ("pii_key", "v" * 32, SecretStr("v" * 32)),
    "TETHER_METRICS_TOKEN": ("metrics_token", "m" * 20, SecretStr("m" * 20)),
    "TETHER_TRACING": ("tracing", "1", True),
}


def test_every_variable_sets_its_setting() -> None:
    settings = Settings.from_env({name: value for name, (_, value, _) in VARIABLES.items()})
    for name, (attribute, _, expected) in VARIABLES.items():
        assert getattr(settings, attribute) == expected, name
    assert len(VARIABLES) == len(Settings.model_fields)  # no setting without its variable


def test_defaults_are_the_documented_ones() -> None:
    settings = Settings.from_env({})
    assert settings.env == "dev"
    assert settings.resolved_database_url == "sqlite:///.tether/tether.db"
    assert settings.temporal_address == "127.0.0.1:7233"
    assert settings.temporal_namespace == "default"
    assert settings.task_queue == "tether"
    assert settings.policy_file is None
    assert settings.openai_api_key is None
    assert settings.openai_base_url == "https://api.openai.com/v1"
    assert settings.anthropic_base_url == "https://api.anthropic.com"
    assert (settings.sim_latency_ms, settings.sim_failure_rate) == (150.0, 0.0)
    assert (settings.sim_quality, settings.sim_seed) == (0.85, 7)
    assert settings.slack_bot_token is None
    assert settings.slack_default_channel == "#tether-reviews"
    assert (settings.ui_host, settings.ui_port) == ("127.0.0.1", 8000)
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.session_secret.get_secret_value() == DEV_SESSION_SECRET


def test_an_empty_variable_counts_as_unset() -> None:
    assert Settings.from_env({"TETHER_SIM_SEED": "", "OPENAI_API_KEY": ""}) == Settings()


def test_a_given_environment_is_the_only_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TETHER_SIM_SEED=5\n")
    monkeypatch.setenv("TETHER_TASK_QUEUE", "from-process")
    settings = Settings.from_env({"TETHER_UI_PORT": "9000"})
    assert (settings.sim_seed, settings.task_queue, settings.ui_port) == (7, "tether", 9000)
    assert Settings(sim_seed=4).task_queue == "tether"  # arguments only, as before


def test_a_dot_env_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "# local secrets\nTETHER_SIM_SEED=5\nSLACK_CHANNEL=#from-dotenv\n"
        "TETHER_TASK_QUEUE=from-dotenv\nCOMPOSE_PROJECT_NAME=another-tool\n"
    )
    monkeypatch.setenv("TETHER_TASK_QUEUE", "from-process")
    settings = Settings.from_env()
    assert settings.sim_seed == 5
    assert settings.slack_default_channel == "#from-dotenv"
    assert settings.task_queue == "from-process"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TETHER_SIM_SEED": "seven"}, r"^TETHER_SIM_SEED: Input should be a valid integer"),
        ({"TETHER_SIM_QUALITY": "1.5"}, r"^TETHER_SIM_QUALITY: Input should be less than or"),
        ({"TETHER_UI_PORT": "http"}, r"^TETHER_UI_PORT: "),
        ({"TETHER_ENV": "production"}, r"^TETHER_SESSION_SECRET must be set to a private value"),
        (
            {"TETHER_ENV": "production", "TETHER_SESSION_SECRET": "short"},
            r"^TETHER_SESSION_SECRET must be at least 32 characters",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_its_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        Settings.from_env(environ)
    assert "\n" not in str(raised.value)


def test_production_accepts_a_private_session_secret() -> None:
    secret = "s3" * 16
    settings = Settings.from_env({"TETHER_ENV": "production", "TETHER_SESSION_SECRET": secret})
    assert settings.session_secret.get_secret_value() == secret


def test_the_cli_reports_a_bad_setting_in_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TETHER_PROVIDER_TIMEOUT_S", "-1")
    assert main(["db", "upgrade"]) == 2
    assert capsys.readouterr().err == (
        "tether: TETHER_PROVIDER_TIMEOUT_S: Input should be greater than 0\n"
    )


def test_only_the_documented_names_are_read() -> None:
    """A lower-case or prefixed spelling of a variable is somebody else's, not Tether's: it must
    not switch production on or hand a key to a provider."""
    settings = Settings.from_env(
        {
            "tether_env": "production",
            "TETHER_OPENAI_API_KEY": "sk-not-this-one",
            "TETHER_SLACK_DEFAULT_CHANNEL": "#elsewhere",
        }
    )
    assert settings.env == "dev"
    assert settings.openai_api_key is None
    assert settings.slack_default_channel == "#tether-reviews"
