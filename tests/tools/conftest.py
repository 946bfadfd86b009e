"""Fixtures for the tool layer: Settings built by hand and a ToolContext with a real session."""

from __future__ import annotations

import socket
from collections.abc import Callable

import aiohttp
import pytest

import assist_bot.tools.builtin  # noqa: F401 - declared before `isolated` snapshots the list
from assist_bot.settings import Settings
from assist_bot.tools import Tool, ToolContext, declared_tools, registry

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
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """No tool setting leaks in from the shell; tools declared by a test are forgotten after it."""
    for name in _OUR_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(registry, "_declared", list(registry._declared))


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
def make_ctx(make_settings, http):
    def make(settings: Settings | None = None, *, user: str = "U1", channel: str = "C1") -> ToolContext:
        return ToolContext(
            settings=settings or make_settings(), http=http, team="T1", channel=channel, user=user, thread_ts="1.0"
        )

    return make


@pytest.fixture
def declared() -> Callable[[Callable[..., object]], Tool]:
    """The Tool that `@tool` recorded for a function, with its declared options."""
    return lambda fn: next(t for t in declared_tools() if t.fn is fn)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
