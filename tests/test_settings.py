import subprocess
import sys

import pytest

from assist_bot.errors import SettingsError
from assist_bot.settings import DEFAULT_MODEL, load_settings

BASE = {"SLACK_BOT_TOKEN": "xoxb-1", "OPENAI_API_KEY": "sk-1", "SLACK_APP_TOKEN": "xapp-1"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "OPENAI_API_KEY",
        "REDIS_URL",
        "ASSIST_BOT_MODEL",
        "ASSIST_BOT_UPDATE_INTERVAL",
        "ASSIST_BOT_ASSISTANTS",
        "SLACK_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults(monkeypatch):
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.model == DEFAULT_MODEL
    assert settings.socket_mode is True
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.update_interval == 1.0
    assert settings.response_timeout == 120
    assert settings.port == 3000
    assert settings.redis_url is None
    assert settings.retention_seconds == 30 * 86400


def test_dotenv_is_read(tmp_path):
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-2\nOPENAI_API_KEY=sk-2\nSLACK_SIGNING_SECRET=s\n")
    settings = load_settings()
    assert settings.slack_bot_token.get_secret_value() == "xoxb-2"
    assert settings.socket_mode is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OPENAI_API_KEY": "sk-1"}, "SLACK_BOT_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "OPENAI_API_KEY is not set"),
        ({**BASE, "OPENAI_API_KEY": " "}, "OPENAI_API_KEY is empty"),
        ({**BASE, "ASSIST_BOT_UPDATE_INTERVAL": "soon"}, "ASSIST_BOT_UPDATE_INTERVAL is invalid"),
        ({**BASE, "SLACK_API_URL": "slack.com"}, "SLACK_API_URL is invalid"),
        ({**BASE, "ASSIST_BOT_ASSISTANTS": "/nope.toml"}, "ASSIST_BOT_ASSISTANTS is invalid: no such file"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "OPENAI_API_KEY": "sk-1"}, "SLACK_SIGNING_SECRET is required in HTTP mode"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, env, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_cli_prints_one_line_and_no_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SLACK_BOT_TOKEN": "xoxb-secret-value"}
    proc = subprocess.run(
        [sys.executable, "-m", "assist_bot", "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "assist-bot: OPENAI_API_KEY is not set: set it to an OpenAI API key (sk-…)"
    assert "Traceback" not in proc.stderr and "xoxb-secret-value" not in proc.stderr


def test_operating_settings(monkeypatch):
    for key, value in {**BASE, "ASSIST_BOT_METRICS_PORT": "9090", "ASSIST_BOT_LOG_FORMAT": "json"}.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert (settings.metrics_port, settings.log_format, settings.log_content) == (9090, "json", False)
    monkeypatch.setenv("ASSIST_BOT_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError, match="ASSIST_BOT_LOG_FORMAT is invalid"):
        load_settings()
    monkeypatch.setenv("ASSIST_BOT_LOG_FORMAT", "text")
    monkeypatch.setenv("PORT", "9090")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    with pytest.raises(SettingsError, match="ASSIST_BOT_METRICS_PORT must differ from PORT"):
        load_settings()


def test_chat_needs_no_slack_token(monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-1")
    assert load_settings(chat=True).openai_api_key.get_secret_value() == "sk-1"
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN is not set"):
        load_settings()


def test_chat_ignores_slack_settings_it_does_not_use(monkeypatch):
    for key, value in {"SLACK_CLIENT_ID": "1.2", "SLACK_BOT_TOKEN": "xoxb-1", "OPENAI_API_KEY": "sk-1"}.items():
        monkeypatch.setenv(key, value)
    assert load_settings(chat=True).openai_api_key.get_secret_value() == "sk-1"
