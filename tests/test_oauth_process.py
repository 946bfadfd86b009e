"""The installed console script in OAuth mode, in its own process: a workspace installs through
/slack/install and /slack/oauth_redirect, its event is answered with its own token, and no
secret reaches the log."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.fakes.slack import event_body, mention, post_signed, wait_for
from tests.support.bot import SIGNING_SECRET
from tests.support.oauth import STATE_SECRET, install
from tests.support.processes import child_env, wait_healthy
from tests.support.redis_server import free_port

pytestmark = pytest.mark.timeout(60)


async def test_the_console_script_installs_a_workspace_and_answers_it_with_its_token(
    slack, openai_fake, redis_url, tmp_path
):
    async with aioredis.Redis.from_url(redis_url) as redis:
        await redis.flushdb()
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SLACK_CLIENT_ID": slack.client_id,
        "SLACK_CLIENT_SECRET": slack.client_secret,
        "SLACK_STATE_SECRET": STATE_SECRET,
        "SLACK_API_URL": slack.api_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": openai_fake.base_url,
        "REDIS_URL": redis_url,
        "PORT": str(port),
        "ASSIST_BOT_HOST": "127.0.0.1",
        "ASSIST_BOT_UPDATE_INTERVAL": "0.05",
        "ASSIST_BOT_SHUTDOWN_GRACE": "0.5",
        "ASSIST_BOT_LOG_LEVEL": "DEBUG",
    }
    script = Path(sys.executable).parent / "assist-bot"
    proc = await asyncio.create_subprocess_exec(
        str(script), "run", "--mode", "http", env=child_env(env), cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(base + "/healthz", proc)
        token = await install(base, slack, "T2")
        event = mention("C2", "U5", "hello from two", team="T2", bot_user_id="UBOT2")
        status, _ = await post_signed(
            base + "/slack/events", event_body(event, team_id="T2"), signing_secret=SIGNING_SECRET
        )
        assert status == 200
        await wait_for(lambda: any("hello from two" in m.text for m in slack.messages if m.channel == "C2"))
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert {c.token for c in slack.calls if c.args.get("channel") == "C2"} == {token}
    log = stderr.decode()
    for secret in (token, slack.client_secret, STATE_SECRET):
        assert secret not in log
