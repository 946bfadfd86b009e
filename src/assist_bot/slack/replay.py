"""Every slash command runs once: a replayed request (the same signed bytes, sent again
within the five minutes a signature stays fresh) carries the same `trigger_id`, which
Slack makes unique per invocation. The first delivery claims it in the store (shared by
every replica); a second is acknowledged and dropped."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

from assist_bot.slack.normalize import workspace
from assist_bot.store import Store

log = logging.getLogger(__name__)


def register(app: AsyncApp, store: Store) -> None:
    @app.middleware
    async def once_per_trigger(
        body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        if not body.get("command"):
            await next()
            return None
        team, trigger = workspace(context), body.get("trigger_id")
        if team is None or not isinstance(trigger, str) or not trigger:
            return BoltResponse(status=400, body="")
        # Hashed: the trigger id is request data, and only our own alphabet goes into a key.
        token = "trigger:" + hashlib.sha256(trigger.encode()).hexdigest()
        if not await store.claim(team, token):
            log.warning("replayed slash command %s dropped", str(body.get("command"))[:40])
            return BoltResponse(status=200, body="")
        await next()
        return None
