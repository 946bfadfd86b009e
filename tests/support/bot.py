"""Runs the real bot in-process against the loopback fakes, configured the way a
user would: through settings (SLACK_API_URL, OPENAI_BASE_URL, REDIS_URL…)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from assist_bot.app import AssistBot
from assist_bot.assistants import Assistants
from assist_bot.settings import Settings
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack, event_body, post_signed

SIGNING_SECRET = "test-signing-secret"


def bot_settings(slack: FakeSlack, openai: FakeOpenAI, *, redis_url: str | None = None,
                 socket_mode: bool = False, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": slack.app_token if socket_mode else None,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": openai.base_url,
        "REDIS_URL": redis_url,
        "PORT": 0,
        "ASSIST_BOT_HOST": "127.0.0.1",
        "ASSIST_BOT_UPDATE_INTERVAL": 0.05,
        "ASSIST_BOT_OPENAI_MAX_RETRIES": 0,
        "ASSIST_BOT_SHUTDOWN_GRACE": 5,
        "ASSIST_BOT_ASSISTANTS": None,
        # Pacing has its own tests; elsewhere the fake Slack imposes no limits.
        "ASSIST_BOT_SLACK_UPDATES_PER_MINUTE": 100_000,
    }
    values.update(extra)
    return Settings(_env_file=None, **values)


@dataclass
class RunningBot:
    bot: AssistBot

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.bot.transport.port}/slack/events"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.bot.transport.port}/healthz"

    async def send(self, event: dict, *, retry_num: int | None = None, event_id: str | None = None,
                   team_id: str = "T1") -> int:
        """Deliver one Events API event over signed HTTP, as Slack does; returns the status."""
        status, _ = await post_signed(self.events_url, event_body(event, event_id=event_id, team_id=team_id),
                                      signing_secret=SIGNING_SECRET, retry_num=retry_num)
        return status


@asynccontextmanager
async def running_bot(slack: FakeSlack, openai: FakeOpenAI, *, assistants: Assistants | None = None,
                      **kwargs: Any) -> AsyncIterator[RunningBot]:
    bot = AssistBot(bot_settings(slack, openai, **kwargs), assistants=assistants)
    await bot.start()
    try:
        yield RunningBot(bot)
    finally:
        await bot.stop()
