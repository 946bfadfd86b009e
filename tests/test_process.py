"""The real console script in its own process: HTTP mode start-up, health check,
and SIGTERM in the middle of an answer."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
import pytest

from assist_bot import texts
from tests.fakes.openai import Hang
from tests.fakes.slack import event_body, mention, post_signed, wait_for
from tests.support.bot import SIGNING_SECRET
from tests.support.redis_server import free_port

pytestmark = pytest.mark.timeout(60)


async def wait_healthy(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if proc.returncode is not None:
                raise AssertionError(f"bot exited early with {proc.returncode}")
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("bot never became healthy")


async def test_sigterm_closes_in_flight_replies_and_exits(slack, openai_fake, tmp_path):
    openai_fake.enqueue(Hang(after_chunks=["Halfway there"]))
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "OPENAI_API_KEY": "sk-test-secret-key",
        "OPENAI_BASE_URL": openai_fake.base_url,
        "PORT": str(port),
        "ASSIST_BOT_HOST": "127.0.0.1",
        "ASSIST_BOT_UPDATE_INTERVAL": "0.05",
        "ASSIST_BOT_SHUTDOWN_GRACE": "0.5",
        "ASSIST_BOT_LOG_LEVEL": "DEBUG",
    }
    openai_fake.api_key = "sk-test-secret-key"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "assist_bot",
        "run",
        "--mode",
        "http",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        event = mention("C1", "U1", "a long story")
        status, _ = await post_signed(
            f"http://127.0.0.1:{port}/slack/events", event_body(event), signing_secret=SIGNING_SECRET
        )
        assert status == 200
        await wait_for(lambda: any("Halfway there" in m.text for m in slack.bot_messages("C1")))
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    reply = slack.bot_messages("C1")[0]
    assert reply.text.startswith("Halfway there") and texts.failure("interrupted") in reply.text
    log = stderr.decode()
    assert "REDIS_URL is not set" in log  # the one warning about the embedded store
    assert slack.bot_token not in log and "sk-test-secret-key" not in log


async def test_a_refused_bot_token_stops_start_up_with_one_line(slack, openai_fake, tmp_path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SLACK_BOT_TOKEN": "xoxb-wrong-token",
        "SLACK_API_URL": slack.api_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": openai_fake.base_url,
        "PORT": str(free_port()),
        "ASSIST_BOT_HOST": "127.0.0.1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "assist_bot",
        "run",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    last = stderr.decode().strip().splitlines()[-1]
    assert last.startswith("assist-bot: SLACK_BOT_TOKEN was refused by Slack (invalid_auth)")
    assert "Traceback" not in stderr.decode() and "xoxb-wrong-token" not in stderr.decode()
