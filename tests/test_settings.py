import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from assist_bot.errors import SettingsError
from assist_bot.settings import DEFAULT_MODEL, Settings, load_settings
from tests.support.processes import child_env

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
        "PORT",
        "ASSIST_BOT_HOST",
        "ASSIST_BOT_LOG_LEVEL",
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
        [sys.executable, "-m", "assist_bot", "run"],
        env=child_env(env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
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


# -- paste-ready files ------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
_EXAMPLE_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def _settings_classes() -> list[type[BaseSettings]]:
    """Every settings class in the package (a tool's settings live with the tool)."""
    import assist_bot

    for module in pkgutil.walk_packages(assist_bot.__path__, "assist_bot."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found, pending = [], list(BaseSettings.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("assist_bot"):
            found.append(cls)
    return found


def _env_names_the_code_reads() -> set[str]:
    names: set[str] = set()
    for cls in _settings_classes():
        prefix = cls.model_config.get("env_prefix") or ""
        for name, field in cls.model_fields.items():
            alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
            names.add(alias or (prefix + name).upper())
    return names


def test_env_example_names_only_settings_the_code_reads():
    keys = set(_EXAMPLE_LINE.findall((ROOT / ".env.example").read_text()))
    assert {"SLACK_BOT_TOKEN", "OPENAI_API_KEY", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"} <= keys
    assert keys - _env_names_the_code_reads() == set()


OAUTH_ONLY = {"SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_STATE_SECRET", "SLACK_REDIRECT_URI"}
ONE_WORKSPACE_ONLY = {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"}


def _uncommented(example: str, *, leave_out: set[str]) -> str:
    """Every commented `KEY=value` line of the example made live, but for the other mode's keys."""
    lines = []
    for line in example.splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if match and match.group(1) in leave_out:
            continue
        lines.append(re.sub(r"^#\s*(?=[A-Z][A-Z0-9_]*=)", "", line))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("mode", "leave_out"), [("one workspace", OAUTH_ONLY), ("oauth", ONE_WORKSPACE_ONLY)])
def test_env_example_pasted_as_is_and_fully_uncommented_loads(tmp_path, mode, leave_out):
    example = (ROOT / ".env.example").read_text()
    (tmp_path / ".env").write_text(example)
    assert load_settings().socket_mode is True  # as pasted: Socket Mode with the placeholders
    # Every commented example value is valid too (the assistants file it names must exist),
    # in each of the two modes it offers.
    (tmp_path / "assistants.toml").write_text((ROOT / "assistants.example.toml").read_text())
    (tmp_path / ".env").write_text(_uncommented(example, leave_out=leave_out))
    settings = load_settings()
    assert settings.oauth is (mode == "oauth")
    assert settings.redis_url == "redis://localhost:6379/0" and settings.slack_api_url == "https://slack.com/api/"
    for cls in _settings_classes():
        if cls is not Settings:
            cls()  # each tool's settings accept the example values too


# -- the signing secret (issue 11, item 1) ------------------------------------------------
HTTP = {"SLACK_BOT_TOKEN": "xoxb-1", "OPENAI_API_KEY": "sk-1"}


@pytest.mark.parametrize("secret", ["", "   ", "\t"])
@pytest.mark.parametrize("app_token", [None, "", " "])
def test_an_empty_or_blank_signing_secret_stops_http_mode(monkeypatch, secret, app_token):
    for key, value in {**HTTP, "SLACK_SIGNING_SECRET": secret}.items():
        monkeypatch.setenv(key, value)
    if app_token is not None:  # `SLACK_APP_TOKEN=` from docker-compose means HTTP mode, not an empty token
        monkeypatch.setenv("SLACK_APP_TOKEN", app_token)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith("SLACK_SIGNING_SECRET is required in HTTP mode and is not set or blank")


def test_socket_mode_needs_no_signing_secret_and_keeps_no_constant(monkeypatch):
    for key, value in {**BASE, "SLACK_SIGNING_SECRET": ""}.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.socket_mode is True and settings.slack_signing_secret is None
    source = "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))
    assert "unused-in-socket-mode" not in source


@pytest.mark.parametrize("argv", [["check"], ["run", "--mode", "http"]])
def test_cli_refuses_a_blank_signing_secret_in_http_mode(tmp_path, argv):
    env = {"PATH": "/usr/bin:/bin", **HTTP, "SLACK_SIGNING_SECRET": " ", "SLACK_APP_TOKEN": "xapp-1"}
    if argv == ["check"]:
        env.pop("SLACK_APP_TOKEN")  # `check` judges the mode the settings choose: HTTP here
    proc = subprocess.run(
        [sys.executable, "-m", "assist_bot", *argv],
        env=child_env(env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "SLACK_SIGNING_SECRET is required in HTTP mode" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


# -- SLACK_API_URL carries the bot token: https unless loopback (issue 11, item 16) --------------
@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://slack.com/api/", True),
        ("https://proxy.example.com/slack/api", True),
        ("http://127.0.0.1:8080/api/", True),
        ("http://127.9.9.9/api/", True),
        ("http://localhost:9000/api/", True),
        ("http://[::1]:9000/api/", True),
        ("http://slack.com/api/", False),
        ("http://10.0.0.5/api/", False),
        ("http://127.0.0.1.evil.example/api/", False),
        ("ftp://slack.com/api/", False),
    ],
)
def test_slack_api_url_must_be_https_unless_loopback(monkeypatch, url, ok):
    for key, value in {**BASE, "SLACK_API_URL": url}.items():
        monkeypatch.setenv(key, value)
    if ok:
        assert load_settings().slack_api_url.startswith(url.rstrip("/"))
        return
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith("SLACK_API_URL is invalid: must")


# -- OPENAI_BASE_URL carries the API key: the same rule (issue 11) ------------------------------
@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://api.openai.com/v1", True),
        ("https://litellm.example.com/v1", True),
        ("http://127.0.0.1:4000/v1", True),
        ("http://localhost:11434/v1", True),
        ("http://api.openai.com/v1", False),
        ("http://192.168.1.20:4000/v1", False),
        ("http://localhost.evil.example/v1", False),
        ("api.openai.com/v1", False),
    ],
)
def test_openai_base_url_must_be_https_unless_loopback(monkeypatch, url, ok):
    for key, value in {**BASE, "OPENAI_BASE_URL": url}.items():
        monkeypatch.setenv(key, value)
    if ok:
        assert load_settings().openai_base_url == url
        return
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith("OPENAI_BASE_URL is invalid: must")
    assert "sk-1" not in str(info.value)
