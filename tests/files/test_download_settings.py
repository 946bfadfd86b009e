"""ASSIST_BOT_MAX_CONCURRENT_DOWNLOADS: a default that bounds memory, and a clear error for a bad value."""

from __future__ import annotations

import pytest

from assist_bot.errors import SettingsError
from assist_bot.settings import load_settings

BASE = {"SLACK_BOT_TOKEN": "xoxb-1", "OPENAI_API_KEY": "sk-1", "SLACK_APP_TOKEN": "xapp-1"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("ASSIST_BOT_MAX_CONCURRENT_DOWNLOADS", raising=False)
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_the_default_bounds_memory_to_a_few_files():
    settings = load_settings()
    assert settings.max_concurrent_downloads == 4
    assert settings.max_concurrent_downloads * settings.max_file_bytes == 200 * 1024 * 1024


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_value_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("ASSIST_BOT_MAX_CONCURRENT_DOWNLOADS", value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith("ASSIST_BOT_MAX_CONCURRENT_DOWNLOADS is invalid")


def test_it_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("ASSIST_BOT_MAX_CONCURRENT_DOWNLOADS", "12")
    assert load_settings().max_concurrent_downloads == 12
