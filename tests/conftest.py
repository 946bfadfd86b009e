"""Shared fixtures: a real redis-server, the loopback fakes, and the bot under test."""

from __future__ import annotations

import pytest

from tests.support.redis_server import redis_server


@pytest.fixture(scope="session")
def redis_url():
    with redis_server() as url:
        yield url
