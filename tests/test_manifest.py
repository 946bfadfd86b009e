"""The manifest is what users install: every event it subscribes to must be
handled (acked), and it must carry the scopes the bot's calls need."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.fakes.slack import event_body, mention, message, wait_for
from tests.support.bot import running_bot
from tests.support.processes import child_env

MANIFEST_FILE = Path(__file__).parents[1] / "manifest.yml"
MANIFEST = yaml.safe_load(MANIFEST_FILE.read_text())
LEGACY_EVENTS = ["assistant_thread_started", "assistant_thread_context_changed"]
BASE_ENV = {"PATH": "/usr/bin:/bin", "SLACK_BOT_TOKEN": "xoxb-1", "OPENAI_API_KEY": "sk-1", "SLACK_APP_TOKEN": "xapp-1"}


def generated_manifest(cwd, **env) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "assist_bot", "manifest"],
        env=child_env({**BASE_ENV, **env}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_checked_in_manifest_is_what_the_command_prints(tmp_path):
    assert generated_manifest(tmp_path) == MANIFEST_FILE.read_text(), "run: assist-bot manifest > manifest.yml"


def test_a_company_tool_module_gets_its_slash_command(tmp_path):
    (tmp_path / "acme_tools.py").write_text(
        textwrap.dedent('''
        from assist_bot.tools import tool

        @tool(slash_command="/leave")
        def leave_balance(employee: str) -> int:
            """Days of leave an employee has left."""
            return 12
    ''')
    )
    manifest = yaml.safe_load(
        generated_manifest(
            tmp_path,
            ASSIST_BOT_TOOL_MODULES="acme_tools",
            PYTHONPATH=str(tmp_path),
            SMTP_HOST="mail.example.com",  # /email only where email is configured
            SMTP_FROM="bot@example.com",
        )
    )
    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert set(commands) == {"/assist", "/weather", "/email", "/leave"}
    assert commands["/leave"]["description"] == "Days of leave an employee has left."


def sample(event_name: str) -> dict:
    if event_name == "app_mention":
        return mention("C1", "U1", "hi")
    if event_name.startswith("message."):
        kind = {"channels": "channel", "groups": "group", "im": "im"}[event_name.split(".")[1]]
        return message("D1" if kind == "im" else "C1", "U1", "hello", channel_type=kind)
    if event_name == "app_home_opened":
        return {"type": event_name, "user": "U1", "channel": "D1", "tab": "home", "event_ts": "1.1"}
    if event_name == "app_context_changed":
        return {"type": event_name, "user": "U1", "channel": "D1", "context": {}, "event_ts": "1.1"}
    return {
        "type": event_name,
        "event_ts": "1.1",
        "assistant_thread": {"user_id": "U1", "channel_id": "D1", "thread_ts": "1.1", "context": {}},
    }


def test_manifest_basics():
    settings = MANIFEST["settings"]
    assert settings["socket_mode_enabled"] is True
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert {
        "app_mentions:read",
        "chat:write",
        "channels:history",
        "groups:history",
        "im:history",
        "users:read",
        "commands",
    } <= scopes
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True


def test_new_apps_get_the_agent_view_home_tab_and_shortcuts():
    features = MANIFEST["features"]
    # Slack, 2026-06-30: new apps can only use agent_view; assistant_view is legacy.
    assert "assistant_view" not in features
    assert features["agent_view"]["agent_description"]
    assert all(p["title"] and p["message"] for p in features["agent_view"]["suggested_prompts"])
    assert features["app_home"]["home_tab_enabled"] is True and features["app_home"]["messages_tab_enabled"] is True
    shortcuts = {s["callback_id"]: s for s in features["shortcuts"]}
    assert shortcuts["ask_about_message"]["name"] == "Ask assist-bot about this"
    assert shortcuts["summarize_thread"]["name"] == "Summarize this thread"
    assert {s["type"] for s in shortcuts.values()} == {"message"}
    events = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_home_opened", "app_context_changed"} <= events
    assert not {"assistant_thread_started", "assistant_thread_context_changed"} & events
    # conversations.info (the viewed channel), conversations.replies (a shortcut's thread), prompts and titles.
    assert {"channels:read", "groups:read", "channels:history", "groups:history", "assistant:write"} <= set(
        MANIFEST["oauth_config"]["scopes"]["bot"]
    )


@pytest.mark.timeout(60)
async def test_every_subscribed_event_is_acknowledged(slack, openai_fake):
    # Apps still on assistant_view get its two events instead: acknowledged too.
    events = [*MANIFEST["settings"]["event_subscriptions"]["bot_events"], *LEGACY_EVENTS]
    async with running_bot(slack, openai_fake, socket_mode=True):
        await slack.wait_socket_connected()
        for name in events:
            envelope = await slack.push_socket_event(event_body(sample(name)))
            ack = await slack.wait_ack(envelope)
            assert ack["envelope_id"] == envelope, name
        # The DM and the mention got their replies too.
        await wait_for(lambda: len(openai_fake.response_requests) == 2)
