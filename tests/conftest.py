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
