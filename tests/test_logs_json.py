"""ASSIST_BOT_LOG_FORMAT=json in the real console script: one JSON object per line, each
line of a turn carrying its team, channel, thread and turn ids; what people wrote only
with ASSIST_BOT_LOG_CONTENT=true; secrets redacted either way."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from tests.fakes.slack import event_body, mention, post_signed
from tests.support.bot import SIGNING_SECRET
from tests.support.console import SCRIPT, script_env
from tests.support.flows import message_containing
from tests.support.processes import wait_healthy
from tests.support.redis_server import free_port

pytestmark = pytest.mark.timeout(60)


async def run_one_turn(slack, openai_fake, tmp_path, **extra) -> tuple[dict, list[dict]]:
    port = free_port()
    openai_fake.api_key = "sk-test-secret-key"
    env = script_env(
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_API_URL=slack.api_url,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        OPENAI_API_KEY="sk-test-secret-key",
        OPENAI_BASE_URL=openai_fake.base_url,
        PORT=port,
        ASSIST_BOT_HOST="127.0.0.1",
        ASSIST_BOT_LOG_FORMAT="json",
        ASSIST_BOT_LOG_LEVEL="DEBUG",
        **extra,
    )
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT), "run", "--mode", "http", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    try:
        await wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        event = mention("C7", "U1", "my secret plans for friday")
        status, _ = await post_signed(
            f"http://127.0.0.1:{port}/slack/events", event_body(event), signing_secret=SIGNING_SECRET
        )
        assert status == 200
        await message_containing(slack, "C7", "You said")
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = stderr.decode()
    assert "sk-test-secret-key" not in text and slack.bot_token not in text
    return event, [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_json_lines_carry_the_turn_ids_and_no_content(slack, openai_fake, tmp_path):
    event, lines = await run_one_turn(slack, openai_fake, tmp_path)
    started = next(line for line in lines if line["message"] == "turn started")
    ended = next(line for line in lines if line["message"].startswith("turn ended: done"))
    ids = {"team": "T1", "channel": "C7", "thread": event["ts"]}
    assert started.items() >= ids.items() and ended.items() >= ids.items()
    assert started["turn"] == ended["turn"] and len(started["turn"]) == 12
    assert {"time", "level", "logger"} <= started.keys()
    assert all("my secret plans" not in json.dumps(line) for line in lines)
    assert all("content" not in line for line in lines)


async def test_content_only_when_allowed(slack, openai_fake, tmp_path):
    _, lines = await run_one_turn(slack, openai_fake, tmp_path, ASSIST_BOT_LOG_CONTENT="true")
    started = next(line for line in lines if line["message"] == "turn started")
    ended = next(line for line in lines if line["message"].startswith("turn ended: done"))
    assert started["content"] == "my secret plans for friday"
    assert ended["content"].startswith("You said:")
