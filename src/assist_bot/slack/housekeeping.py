"""Surface: subscribed events that need no answer, acknowledged so that Slack
does not redeliver them (an unhandled event is never acked in Socket Mode)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from assist_bot.slack.deps import HousekeepingDeps
from assist_bot.slack.normalize import valid_ids, workspace

log = logging.getLogger(__name__)

# The assistant-thread events arrive because the manifest enables Slack's
# assistant view (which is what lets us show a "thinking" status in DMs).
ACKNOWLEDGED_EVENTS = ("assistant_thread_started", "assistant_thread_context_changed")


def register(app: AsyncApp, deps: HousekeepingDeps) -> None:
    async def acknowledge() -> None:
        return None

    for name in ACKNOWLEDGED_EVENTS:
        app.event(name)(acknowledge)

    @app.event("file_deleted")
    async def on_file_deleted(event: dict[str, Any], context: AsyncBoltContext) -> None:
        # A file deleted in Slack leaves the channel's knowledge too.
        team = workspace(context)
        if team is None or not valid_ids(event.get("file_id")):
            return
        if await deps.knowledge.forget_slack_file(team, event["file_id"]):
            log.info("file %s deleted in Slack: removed from knowledge", event.get("file_id"))
