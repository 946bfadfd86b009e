"""kill -9 of a bot process mid-answer (the installed console script, HTTP mode, on a
real redis-server): the half-written reply gets a note, the interrupted message and the
follow-up queued behind it are answered exactly once — by a second replica, or by the
same replica restarted. Leases are short here (ASSIST_BOT_LOCK_LEASE=2)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from assist_bot import texts
from assist_bot.store import ThreadKey
from assist_bot.store.redis import RedisStore
from tests.fakes.openai import Hang, input_texts
from tests.fakes.slack import event_body, mention, message, post_signed, wait_for
from tests.support.bot import SIGNING_SECRET
from tests.support.flows import reply_containing
from tests.support.polling import wait_until_equal
from tests.support.processes import wait_healthy
from tests.support.redis_server import free_port

pytestmark = pytest.mark.timeout(90)

CONSOLE_SCRIPT = Path(sys.executable).with_name("assist-bot")


class Replica:
    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc, self.port = proc, port

    async def send(self, event: dict) -> None:
        url = f"http://127.0.0.1:{self.port}/slack/events"
        status, _ = await post_signed(url, event_body(event), signing_secret=SIGNING_SECRET)
        assert status == 200

    async def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no shutdown, no note, the lock stays until its lease runs out
        await self.proc.wait()


@asynccontextmanager
async def replica(slack, openai_fake, redis_url: str, tmp_path: Path, **extra: str) -> AsyncIterator[Replica]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": openai_fake.base_url,
        "REDIS_URL": redis_url,
        "PORT": str(port),
        "ASSIST_BOT_HOST": "127.0.0.1",
        "ASSIST_BOT_UPDATE_INTERVAL": "0.05",
        "ASSIST_BOT_OPENAI_MAX_RETRIES": "0",
        "ASSIST_BOT_SHUTDOWN_GRACE": "1",
        "ASSIST_BOT_LOCK_LEASE": "2",
        "ASSIST_BOT_LOG_LEVEL": "DEBUG",
        **extra,
    }
    log = (tmp_path / f"bot-{port}.log").open("wb")  # read when a test fails
    proc = await asyncio.create_subprocess_exec(
        str(CONSOLE_SCRIPT),
        "run",
        "--mode",
        "http",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log,
    )
    try:
        await wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield Replica(proc, port)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


@pytest.fixture(params=["redis", "cluster"])
def backend_url(request):
    """A real redis-server, or a real three-node Redis Cluster."""
    return request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")


@pytest.fixture
async def store(backend_url):
    made = RedisStore.from_url(backend_url, retention_seconds=3600)
    await made._redis.flushdb()
    yield made
    await made._redis.flushdb()
    await made.close()


async def half_answer_then_follow_up(slack, openai_fake, store, dying: Replica, other: Replica) -> str:
    """A mention on `dying` streams half an answer and hangs; a follow-up reaches `other`
    and waits in the thread's queue. Returns the thread's ts."""
    openai_fake.enqueue(Hang(after_chunks=["Halfway there"]))
    first = mention("C1", "U1", "a long story")
    slack.seed_message("C1", "U1", first["text"], ts=first["ts"])  # in Slack, as it was sent
    await dying.send(first)
    await reply_containing(slack, "C1", first["ts"], "Halfway there")
    await other.send(message("C1", "U2", "and one more thing", thread_ts=first["ts"]))
    thread = ThreadKey("T1", "C1", first["ts"])
    await wait_until_equal(lambda: store._pending_count(thread), 1)
    return first["ts"]


async def assert_answered_once_after_the_crash(slack, openai_fake, store, thread_ts: str) -> None:
    def done():
        replies = slack.thread_replies("C1", thread_ts)
        return (
            len(replies) == 2 and replies[1].text.startswith("You said") and texts.INTERRUPTED_AGAIN in replies[0].text
        )

    await wait_for(done, seconds=30)
    thread = ThreadKey("T1", "C1", thread_ts)
    # The taking-over turn ended: the lock, the queue and the dead turn's records are gone.
    await wait_until_equal(
        lambda: store._redis.exists(
            store.keys.lock(thread), store.keys.pending(thread), store.keys.inflight(thread), store.keys.turn(thread)
        ),
        0,
    )
    half, answer = slack.thread_replies("C1", thread_ts)
    assert half.text.startswith("Halfway there") and half.text.endswith(texts.INTERRUPTED_AGAIN)
    assert "and one more thing" in answer.text
    requests = openai_fake.response_requests
    assert len(requests) == 2  # the interrupted one, and one answer to both messages
    assert input_texts(requests[1]) == ["[user-U1 (U1)] a long story", "[user-U2 (U2)] and one more thing"]


async def test_a_replica_killed_mid_answer_is_taken_over_by_another(slack, openai_fake, store, backend_url, tmp_path):
    async with (
        replica(slack, openai_fake, backend_url, tmp_path) as one,
        replica(slack, openai_fake, backend_url, tmp_path) as two,
    ):
        thread_ts = await half_answer_then_follow_up(slack, openai_fake, store, one, two)
        await one.kill()
        await assert_answered_once_after_the_crash(slack, openai_fake, store, thread_ts)


async def test_a_replica_killed_mid_answer_recovers_its_threads_when_restarted(
    slack, openai_fake, store, backend_url, tmp_path
):
    async with replica(slack, openai_fake, backend_url, tmp_path) as one:
        thread_ts = await half_answer_then_follow_up(slack, openai_fake, store, one, one)
        await one.kill()
    async with replica(slack, openai_fake, backend_url, tmp_path):
        await assert_answered_once_after_the_crash(slack, openai_fake, store, thread_ts)


async def test_a_reply_streamed_by_edits_is_closed_and_answered_again_too(
    slack, openai_fake, store, backend_url, tmp_path
):
    """The same with ASSIST_BOT_STREAM_MODE=edit: the placeholder is recorded at once."""
    async with (
        replica(slack, openai_fake, backend_url, tmp_path, ASSIST_BOT_STREAM_MODE="edit") as one,
        replica(slack, openai_fake, backend_url, tmp_path, ASSIST_BOT_STREAM_MODE="edit") as two,
    ):
        thread_ts = await half_answer_then_follow_up(slack, openai_fake, store, one, two)
        await one.kill()
        await assert_answered_once_after_the_crash(slack, openai_fake, store, thread_ts)
