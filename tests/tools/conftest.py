"""Fixtures for the tool layer: Settings built by hand and a ToolContext with a real session."""

from __future__ import annotations

import socket
from collections.abc import Callable

import aiohttp
import pytest

from assist_bot.settings import Settings
from assist_bot.tools import Tool, ToolContext, tool_of
from assist_bot.tools.loading import prepare

_OUR_ENV = (
    "ASSIST_BOT_TOOL_MODULES",
    "ASSIST_BOT_ADMINS",
    "ASSIST_BOT_TOOL_TIMEOUT",
    "OPEN_METEO_GEOCODING_URL",
    "OPEN_METEO_FORECAST_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_FROM",
    "SMTP_STARTTLS",
    "SMTP_SELF_APPROVAL",
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """No tool setting leaks in from the shell."""
    for name in _OUR_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_settings():
    def make(**env: object) -> Settings:
        base = {"SLACK_BOT_TOKEN": "xoxb-t", "OPENAI_API_KEY": "sk-t", "SLACK_APP_TOKEN": "xapp-t"}
        return Settings(_env_file=None, **{**base, **env})  # type: ignore[arg-type]

    return make


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def make_ctx(http):
    def make(*, user: str = "U1", channel: str = "C1") -> ToolContext:
        return ToolContext(http=http, team="T1", channel=channel, user=user, thread_ts="1.0")

    return make


@pytest.fixture
def declared() -> Callable[[Callable[..., object]], Tool]:
    """The Tool that `@tool` attached to a function, with its declared options."""

    def find(fn: Callable[..., object]) -> Tool:
        found = tool_of(fn)
        assert found is not None, f"{fn} is not a tool"
        return found

    return find


@pytest.fixture
def loaded(declared, make_settings, monkeypatch):
    """A declared tool as load_registry prepares it, its own settings read from `env`."""

    def load(fn: Callable[..., object], **env: str) -> Tool:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        ready = prepare(declared(fn), make_settings())
        assert ready is not None, f"{fn} is not enabled"
        return ready

    return load


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
