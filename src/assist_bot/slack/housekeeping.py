"""Surface: subscribed events that need no answer, acknowledged so that Slack
does not redeliver them (an unhandled event is never acked in Socket Mode)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from assist_bot.slack.deps import SurfaceDeps

# The assistant-thread events arrive because the manifest enables Slack's
# assistant view (which is what lets us show a "thinking" status in DMs).
ACKNOWLEDGED_EVENTS = ("assistant_thread_started", "assistant_thread_context_changed")


def register(app: AsyncApp, deps: SurfaceDeps) -> None:
    async def acknowledge() -> None:
        return None

    for name in ACKNOWLEDGED_EVENTS:
        app.event(name)(acknowledge)
