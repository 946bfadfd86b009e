"""The real console script in its own process, started as people start it: the
installed `assist-bot` (Socket Mode by default, HTTP mode), every Procfile line
verbatim, health check, and SIGTERM in the middle of an answer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from assist_bot import texts
from tests.fakes.openai import Hang
from tests.fakes.slack import event_body, mention, post_signed, wait_for
from tests.support.bot import SIGNING_SECRET
from tests.support.processes import child_env, wait_healthy
from tests.support.redis_server import free_port

pytestmark = pytest.mark.timeout(60)


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
        env=child_env(env),
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
        env=child_env(env),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    last = stderr.decode().strip().splitlines()[-1]
    assert last.startswith("assist-bot: SLACK_BOT_TOKEN was refused by Slack (invalid_auth)")
    assert "Traceback" not in stderr.decode() and "xoxb-wrong-token" not in stderr.decode()


ROOT = Path(__file__).resolve().parent.parent
# The console script pip installed next to the interpreter running the tests (.venv/bin/assist-bot).
CONSOLE_SCRIPT = Path(sys.executable).parent / "assist-bot"


def procfile_lines() -> list[tuple[str, str]]:
    lines = []
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            lines.append((name.strip(), command.strip()))
    return lines


def user_env(slack, openai_fake, **extra: str) -> dict[str, str]:
    """What a person puts in .env, pointed at the fakes; the installed script first on PATH."""
    openai_fake.api_key = "sk-test-secret-key"
    return {
        "PATH": f"{CONSOLE_SCRIPT.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": "sk-test-secret-key",
        "OPENAI_BASE_URL": openai_fake.base_url,
        "PORT": str(free_port()),
        "ASSIST_BOT_HOST": "127.0.0.1",
        "ASSIST_BOT_UPDATE_INTERVAL": "0.05",
        "ASSIST_BOT_SHUTDOWN_GRACE": "2",
        **extra,
    }


@contextlib.asynccontextmanager
async def started(argv: list[str], env: dict[str, str], cwd: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start a command in its own process group (as a Procfile runner does); kill it if the test fails."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=child_env(env),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def terminate(proc: asyncio.subprocess.Process) -> str:
    """SIGTERM to the process group, as Heroku or foreman stop a dyno; returns stderr."""
    os.killpg(proc.pid, signal.SIGTERM)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=20)
    return stderr.decode()


async def mode_of(proc: asyncio.subprocess.Process, slack, port: str) -> str:
    """Wait until the bot is connected over Socket Mode or healthy over HTTP; say which."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        for _ in range(300):
            if proc.returncode is not None:
                _, stderr = await proc.communicate()
                raise AssertionError(f"bot exited early with {proc.returncode}: {stderr.decode()[-2000:]}")
            if slack.open_sockets:
                return "socket"
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return "http"
            await asyncio.sleep(0.05)
    raise AssertionError("the bot neither connected over Socket Mode nor became healthy")


async def mention_answered(slack, mode: str, port: str, channel: str) -> None:
    event = mention(channel, "U1", f"hello from {mode}")
    if mode == "socket":
        await slack.wait_ack(await slack.push_socket_event(event_body(event)))
    else:
        status, _ = await post_signed(
            f"http://127.0.0.1:{port}/slack/events", event_body(event), signing_secret=SIGNING_SECRET
        )
        assert status == 200
    await wait_for(lambda: any(f"hello from {mode}" in m.text for m in slack.thread_replies(channel, event["ts"])))


async def test_installed_console_script_runs_in_socket_mode_by_default(slack, openai_fake, tmp_path):
    assert CONSOLE_SCRIPT.is_file(), "the test command installs the package into the venv"
    env = user_env(slack, openai_fake)
    async with started([str(CONSOLE_SCRIPT), "run"], env, tmp_path) as proc:
        assert await mode_of(proc, slack, env["PORT"]) == "socket"
        assert slack.calls_to("apps.connections.open")[0].token == slack.app_token
        await mention_answered(slack, "socket", env["PORT"], "C1")
        stderr = await terminate(proc)
    assert proc.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    assert slack.bot_token not in stderr and slack.app_token not in stderr and "sk-test-secret-key" not in stderr


@pytest.mark.parametrize(("name", "command"), procfile_lines(), ids=[name for name, _ in procfile_lines()])
async def test_each_procfile_line_starts_answers_and_stops_cleanly(slack, openai_fake, tmp_path, name, command):
    env = user_env(slack, openai_fake)
    # A Procfile runner hands the line to a shell, in the app's directory.
    async with started(["/bin/sh", "-c", command], env, ROOT) as proc:
        mode = await mode_of(proc, slack, env["PORT"])
        assert mode == {"worker": "socket", "web": "http"}.get(name, mode)
        await mention_answered(slack, mode, env["PORT"], "C2")
        stderr = await terminate(proc)
    assert proc.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("socket_mode", [True, False], ids=["socket", "http"])
def test_the_app_can_be_composed_before_any_event_loop_runs(socket_mode, tmp_path):
    """Nothing that needs a running loop (aiohttp sessions, the Socket Mode client) is built
    in AssistBot.__init__: an embedding program may compose the app first, then run it."""
    from assist_bot.app import AssistBot
    from assist_bot.settings import Settings

    settings = Settings(
        _env_file=None,
        SLACK_BOT_TOKEN="xoxb-1",
        OPENAI_API_KEY="sk-1",
        SLACK_APP_TOKEN="xapp-1" if socket_mode else None,
        SLACK_SIGNING_SECRET=None if socket_mode else SIGNING_SECRET,
    )
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()  # really outside a loop
    bot = AssistBot(settings)
    assert bot.transport is None  # made by start(), inside the loop


async def test_a_refused_app_token_stops_start_up_with_one_line(slack, openai_fake, tmp_path):
    env = user_env(slack, openai_fake, SLACK_APP_TOKEN="xapp-wrong-token")
    async with started([str(CONSOLE_SCRIPT), "run"], env, tmp_path) as proc:
        # The SDK alone would retry every 10 s forever, a traceback each time.
        _, stderr_bytes = await asyncio.wait_for(proc.communicate(), timeout=30)
    stderr = stderr_bytes.decode()
    assert proc.returncode == 2
    assert stderr.strip().splitlines()[-1].startswith("assist-bot: SLACK_APP_TOKEN was refused by Slack (invalid_auth)")
    assert "Traceback" not in stderr and "xapp-wrong-token" not in stderr


async def test_sigterm_while_start_up_waits_on_slack_exits_cleanly(slack, openai_fake, tmp_path):
    held = slack.hold_next("apps.connections.open")
    env = user_env(slack, openai_fake)
    try:
        async with started([str(CONSOLE_SCRIPT), "run"], env, tmp_path) as proc:
            await wait_for(lambda: slack.calls_to("apps.connections.open"), 30)
            stderr = await terminate(proc)
    finally:
        held.set()
    assert proc.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
