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
async def openai_fake():
    from tests.fakes.openai import FakeOpenAI

    fake = FakeOpenAI()
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
