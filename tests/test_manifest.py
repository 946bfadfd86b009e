"""The manifest is what users install: every event it subscribes to must be
handled (acked), and it must carry the scopes the bot's calls need."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fakes.slack import event_body, mention, message, wait_for
from tests.support.bot import running_bot

MANIFEST = yaml.safe_load((Path(__file__).parents[1] / "manifest.yml").read_text())


def sample(event_name: str) -> dict:
    if event_name == "app_mention":
        return mention("C1", "U1", "hi")
    if event_name.startswith("message."):
        kind = {"channels": "channel", "groups": "group", "im": "im"}[event_name.split(".")[1]]
        return message("D1" if kind == "im" else "C1", "U1", "hello", channel_type=kind)
    return {"type": event_name, "event_ts": "1.1",
            "assistant_thread": {"user_id": "U1", "channel_id": "D1", "thread_ts": "1.1", "context": {}}}


def test_manifest_basics():
    settings = MANIFEST["settings"]
    assert settings["socket_mode_enabled"] is True
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "channels:history", "groups:history", "im:history",
            "users:read"} <= scopes


@pytest.mark.timeout(60)
async def test_every_subscribed_event_is_acknowledged(slack, openai_fake):
    events = MANIFEST["settings"]["event_subscriptions"]["bot_events"]
    async with running_bot(slack, openai_fake, socket_mode=True):
        await slack.wait_socket_connected()
        for name in events:
            envelope = await slack.push_socket_event(event_body(sample(name)))
            ack = await slack.wait_ack(envelope)
            assert ack["envelope_id"] == envelope, name
        # The DM and the mention got their replies too.
        await wait_for(lambda: len(openai_fake.response_requests) == 2)
