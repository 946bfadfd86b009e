"""Choosing between one workspace (SLACK_BOT_TOKEN) and many (OAuth) in settings: clear lines, no traces."""

from __future__ import annotations

import pytest

from assist_bot.errors import SettingsError
from assist_bot.settings import load_settings

OAUTH = {
    "OPENAI_API_KEY": "sk-1",
    "SLACK_SIGNING_SECRET": "sig",
    "SLACK_CLIENT_ID": "111.222",
    "SLACK_CLIENT_SECRET": "client-secret",
    "SLACK_STATE_SECRET": "state-secret",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    for key in (*OAUTH, "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "ASSIST_BOT_TOKEN_ROTATION_MINUTES"):
        monkeypatch.delenv(key, raising=False)


def settings_with(monkeypatch, env: dict[str, str]):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def test_oauth_mode_needs_no_bot_token(monkeypatch):
    settings = settings_with(monkeypatch, OAUTH)
    assert settings.oauth is True and settings.slack_bot_token is None
    assert settings.token_rotation_minutes == 120
    assert settings_with(monkeypatch, {"ASSIST_BOT_TOKEN_ROTATION_MINUTES": "30"}).token_rotation_minutes == 30


def test_one_workspace_stays_the_default(monkeypatch):
    settings = settings_with(
        monkeypatch, {"SLACK_BOT_TOKEN": "xoxb-1", "OPENAI_API_KEY": "sk-1", "SLACK_APP_TOKEN": "x"}
    )
    assert settings.oauth is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({**OAUTH, "SLACK_CLIENT_SECRET": ""}, "SLACK_CLIENT_SECRET is empty"),
        ({k: v for k, v in OAUTH.items() if k != "SLACK_STATE_SECRET"}, "SLACK_STATE_SECRET is not set"),
        ({k: v for k, v in OAUTH.items() if k != "SLACK_CLIENT_SECRET"}, "SLACK_CLIENT_SECRET is not set"),
        ({k: v for k, v in OAUTH.items() if k != "SLACK_CLIENT_ID"}, "SLACK_CLIENT_ID is not set"),
        ({**OAUTH, "SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_BOT_TOKEN and SLACK_CLIENT_ID are both set"),
        ({**OAUTH, "SLACK_APP_TOKEN": "xapp-1"}, "SLACK_CLIENT_ID (many workspaces) needs HTTP mode"),
        ({**OAUTH, "ASSIST_BOT_TOKEN_ROTATION_MINUTES": "0"}, "ASSIST_BOT_TOKEN_ROTATION_MINUTES is invalid"),
    ],
)
def test_bad_oauth_settings_name_the_variable(monkeypatch, env, expected):
    with pytest.raises(SettingsError) as info:
        settings_with(monkeypatch, env)
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value) and "client-secret" not in str(info.value)
