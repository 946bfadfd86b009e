"""Runs the real bot in-process against the loopback fakes, configured the way a
user would: through settings (SLACK_API_URL, OPENAI_BASE_URL, REDIS_URL…)."""

from __future__ import annotations

import asyncio
import uuid
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


def bot_settings(
    slack: FakeSlack, openai: FakeOpenAI, *, redis_url: str | None = None, socket_mode: bool = False, **extra: Any
) -> Settings:
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
        # Pacing has its own tests; elsewhere the fake Slack imposes no limits. (Appends have no
        # limit until Slack answers one with a 429: the default.)
        "ASSIST_BOT_SLACK_UPDATES_PER_MINUTE": 100_000,
        # The periodic clean-up has its own tests (they turn it on); elsewhere it would share
        # a test's `sleep` (see running_bot) and sweep at each of its waits.
        "ASSIST_BOT_CLEANUP_INTERVAL": 0,
    }
    values.update(extra)
    return Settings(_env_file=None, **values)


def _awaiting(coro: Any) -> list[str]:
    """Where a suspended coroutine waits: each awaited coroutine in turn (a task's own stack
    shows only its outermost frame)."""
    chain = []
    while coro is not None and len(chain) < 40:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            chain.append(type(coro).__name__)  # a future (another task's, say): listed on its own
            break
        chain.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return chain


@dataclass
class RunningBot:
    bot: AssistBot

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.bot.transport.port}/slack/events"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.bot.transport.port}/healthz"

    async def settled(self, seconds: float = 10) -> None:
        """Until the bot has no turn or owned background work left; when it does not settle,
        the failure names what is still running and where each piece waits."""
        dispatcher = self.bot.dispatcher
        deadline = asyncio.get_running_loop().time() + seconds
        while dispatcher.in_flight:
            if asyncio.get_running_loop().time() >= deadline:
                # The bot's own work first, then every other pending task (what it may wait for).
                mine = list(dispatcher._tasks)
                others = [t for t in asyncio.all_tasks() if t not in mine and t is not asyncio.current_task()]
                waiting = [
                    f"{task.get_name()}{' (cancelling)' if task.cancelling() else ''}: "
                    + " -> ".join(_awaiting(task.get_coro()))
                    for task in mine + others[:30]
                ]
                raise AssertionError(f"still running after {seconds}s:\n" + "\n".join(waiting))
            await asyncio.sleep(0.02)

    async def send(
        self, event: dict, *, retry_num: int | None = None, event_id: str | None = None, team_id: str = "T1"
    ) -> int:
        """Deliver one Events API event over signed HTTP, as Slack does; returns the status."""
        status, _ = await post_signed(
            self.events_url,
            event_body(event, event_id=event_id, team_id=team_id),
            signing_secret=SIGNING_SECRET,
            retry_num=retry_num,
        )
        return status

    async def post_form(self, fields: dict) -> int:
        """A form-encoded request (a slash command) as Slack posts it, signed; returns the status."""
        status, _ = await post_signed(
            self.events_url, fields, signing_secret=SIGNING_SECRET, content_type="application/x-www-form-urlencoded"
        )
        return status

    async def command(
        self, slack: FakeSlack, command: str, text: str = "", *, user: str = "U1", channel: str = "C1", team: str = "T1"
    ) -> str:
        """A slash command as Slack posts it; returns its response_url (see slack.responses)."""
        response_url = slack.response_url()
        status = await self.post_form(
            {
                "token": "legacy",
                "team_id": team,
                "team_domain": "acme",
                "channel_id": channel,
                "channel_name": f"chan-{channel}",
                "user_id": user,
                "user_name": f"user-{user}",
                "command": command,
                "text": text,
                "api_app_id": "A1",
                "response_url": response_url,
                "trigger_id": f"trig-{uuid.uuid4().hex}",
            }
        )
        assert status == 200
        return response_url

    async def click(
        self,
        slack: FakeSlack,
        action_id: str,
        value: str,
        *,
        user: str,
        channel: str,
        message_ts: str,
        team: str = "T1",
    ) -> None:
        """A click on an Approve/Decline button of a consent prompt."""
        action = {"action_id": action_id, "block_id": "assist_approval", "value": value, "type": "button"}
        click = block_actions(slack, action, user=user, channel=channel, message_ts=message_ts, team=team)
        status, _ = await self.post_payload(click)
        assert status == 200

    async def submit_view(self, view: dict, values: dict, *, user: str = "U1", team: str = "T1") -> tuple[int, str]:
        """A modal's view_submission; `values` is block_id → the element's state."""
        payload = {
            "type": "view_submission",
            **sent_by(user, team),
            "view": {**view, "id": "V1", "state": {"values": {k: {"value": v} for k, v in values.items()}}},
        }
        return await self.post_payload(payload)

    async def post_payload(self, payload: dict) -> tuple[int, str]:
        """An interactive request (a click, a shortcut, a form) as Slack posts it: form-encoded
        payload=<json>, signed. Returns the status and the body."""
        return await post_signed(
            self.events_url,
            {"payload": payload},
            signing_secret=SIGNING_SECRET,
            content_type="application/x-www-form-urlencoded",
        )


def sent_by(user: str, team: str) -> dict:
    """The fields of an interactive payload that say who sent it, from which app and workspace."""
    return {
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": f"user-{user}", "team_id": team},
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": f"trig-{uuid.uuid4().hex}",
    }


def block_actions(
    slack: FakeSlack,
    action: dict,
    *,
    user: str,
    channel: str,
    message_ts: str,
    thread_ts: str | None = None,
    team: str = "T1",
) -> dict:
    """A click on an element of a message (in a thread when `thread_ts` is given), as Slack posts
    block_actions; `action` is the element's own part (type, action_id, block_id, value)."""
    in_thread = {"thread_ts": thread_ts} if thread_ts else {}
    return {
        "type": "block_actions",
        **sent_by(user, team),
        "response_url": slack.response_url(),
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, **in_thread},
        "channel": {"id": channel, "name": f"chan-{channel}"},
        "message": {"ts": message_ts, **in_thread, "text": ""},
        "actions": [{**action, "action_ts": "1.1"}],
    }


async def wait_pending(store, thread, count: int, seconds: float = 10) -> None:
    """Wait until `count` messages are queued for the thread (each store twin keeps a
    private count for tests: production never asks)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while await store._pending_count(thread) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{count} messages never got queued for {thread}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running_bot(
    slack: FakeSlack,
    openai: FakeOpenAI,
    *,
    assistants: Assistants | None = None,
    timers: dict[str, Any] | None = None,
    **kwargs: Any,
) -> AsyncIterator[RunningBot]:
    """`timers`: the bot's `sleep` and/or `deadline` (see AssistBot), for tests that check a time-out."""
    bot = AssistBot(bot_settings(slack, openai, **kwargs), assistants=assistants, **(timers or {}))
    await bot.start()
    try:
        yield RunningBot(bot)
    finally:
        await bot.stop()
