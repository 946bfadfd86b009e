"""Shared fixtures: a real redis-server, the loopback fakes, and the bot under test."""

from __future__ import annotations

import pytest

from tests.support.redis_cluster import redis_cluster
from tests.support.redis_server import redis_server


@pytest.fixture(scope="session")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_cluster_url():
    """A `redis+cluster://` URL of a real three-node Redis Cluster (started once per session)."""
    with redis_cluster() as url:
        yield url


@pytest.fixture
async def clean_redis(redis_url):
    """The session's redis-server, emptied before and after the test (for tests whose replicas share it)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield redis_url
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def slack():
    from tests.fakes.slack import FakeSlack

    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def state_mode() -> str:
    """ASSIST_BOT_STATE for the bot under test; scenario tests parametrise it (tests/support/modes.py)."""
    return "auto"


@pytest.fixture
async def openai_fake(state_mode, monkeypatch):
    from tests.fakes.openai import FakeOpenAI

    # Only `conversation` (and `auto`, which finds them) gets a server with conversations: the
    # other modes must work where there are none.
    fake = FakeOpenAI(conversations=state_mode in ("auto", "conversation"))
    monkeypatch.setenv("ASSIST_BOT_STATE", state_mode)  # as people configure it
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def meteo():
    from tests.fakes.meteo import FakeOpenMeteo

    fake = FakeOpenMeteo()
    await fake.server.start_server()
    yield fake
    await fake.server.close()


@pytest.fixture
def meteo_env(meteo, monkeypatch):
    """The fake Open-Meteo, set as the weather tool's own settings (OPEN_METEO_*), as users set them."""
    monkeypatch.setenv("OPEN_METEO_GEOCODING_URL", meteo.geocoding_url)
    monkeypatch.setenv("OPEN_METEO_FORECAST_URL", meteo.forecast_url)
    return meteo


@pytest.fixture
async def mail_inbox(monkeypatch):
    """A real SMTP server, and send_email's own settings (SMTP_*) pointing at it; yields what it received."""
    from tests.fakes.smtp import smtp_server

    async with smtp_server() as (controller, inbox):
        for name, value in {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(controller.port),
            "SMTP_FROM": "bot@example.com",
            "SMTP_STARTTLS": "false",
        }.items():
            monkeypatch.setenv(name, value)
        yield inbox
