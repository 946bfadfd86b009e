"""Where a distributed app keeps its workspaces' installations (bot tokens, refresh tokens).

slack-sdk defines the interface (`AsyncInstallationStore`) and ships file, SQL and S3 stores,
none for Redis. Two twins here: Redis (shared by every replica, survives restarts) and memory
(one process, for a local trial and the tests). Both keep one record set per workspace under
`assist-bot:<team>:installation` — a Redis hash with the fields `bot`, `latest` and `user:<id>`
— so that a workspace's tokens never mix with another's and uninstalling drops them at once.

An org-wide (Enterprise Grid) install has no team: it is keyed by `E-<enterprise id>`. Team ids
are unique across Slack, so a workspace install is keyed by its team alone.
"""

from __future__ import annotations

import abc
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation

from assist_bot.store.keys import NAMESPACE
from assist_bot.store.redis_client import connect

log = logging.getLogger(__name__)

BOT, LATEST, USER = "bot", "latest", "user:"


def workspace_key(enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False) -> str:
    """The id an installation is filed under: the team, or the org for an org-wide install."""
    if team_id and not is_enterprise_install:
        return team_id
    if enterprise_id:
        return f"E-{enterprise_id}"
    raise ValueError("an installation needs a team id or an enterprise id")


def _encode(record: Installation | Bot) -> str:
    # The models' own constructor arguments (as slack-sdk's file store keeps them): they round-trip.
    return json.dumps(record.__dict__)


class HashInstallationStore(AsyncInstallationStore, abc.ABC):
    """The logic of the interface over five primitives on one hash per workspace."""

    @property
    def logger(self) -> logging.Logger:
        return log

    # -- primitives ------------------------------------------------------------------
    @abc.abstractmethod
    async def _get(self, workspace: str, field: str) -> str | None: ...

    @abc.abstractmethod
    async def _set(self, workspace: str, values: dict[str, str]) -> None: ...

    @abc.abstractmethod
    async def _fields(self, workspace: str) -> list[str]: ...

    @abc.abstractmethod
    async def _remove(self, workspace: str, fields: list[str]) -> None: ...

    @abc.abstractmethod
    async def _drop(self, workspace: str) -> None: ...

    async def close(self) -> None:
        return None

    # -- the interface ---------------------------------------------------------------
    async def async_save(self, installation: Installation) -> None:
        workspace = workspace_key(installation.enterprise_id, installation.team_id, installation.is_enterprise_install)
        record = _encode(installation)
        values = {LATEST: record, USER + (installation.user_id or "none"): record}
        if installation.bot_token:
            values[BOT] = _encode(installation.to_bot())
        await self._set(workspace, values)  # one write: a reader never sees half an install

    async def async_save_bot(self, bot: Bot) -> None:
        if not bot.bot_token:
            return
        await self._set(workspace_key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install), {BOT: _encode(bot)})

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        raw = await self._get(workspace_key(enterprise_id, team_id, is_enterprise_install), BOT)
        return Bot(**json.loads(raw)) if raw else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        workspace = workspace_key(enterprise_id, team_id, is_enterprise_install)
        raw = await self._get(workspace, LATEST if user_id is None else USER + user_id)
        if not raw:
            return None
        installation = Installation(**json.loads(raw))
        bot = await self.async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        if bot is not None and bot.bot_token != installation.bot_token:
            _take_bot(installation, bot)  # a rotated (or re-installed) bot token is the one to use
        return installation

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._remove(workspace_key(enterprise_id, team_id), [BOT])

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        workspace = workspace_key(enterprise_id, team_id)
        if user_id is None:
            await self._remove(workspace, [f for f in await self._fields(workspace) if f != BOT])
            return
        doomed = [USER + user_id]
        latest = await self._get(workspace, LATEST)
        if latest and json.loads(latest).get("user_id") == user_id:
            doomed.append(LATEST)
        await self._remove(workspace, doomed)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._drop(workspace_key(enterprise_id, team_id))


def _take_bot(installation: Installation, bot: Bot) -> None:
    installation.bot_id = bot.bot_id
    installation.bot_user_id = bot.bot_user_id
    installation.bot_token = bot.bot_token
    installation.bot_scopes = bot.bot_scopes
    installation.bot_refresh_token = bot.bot_refresh_token
    installation.bot_token_expires_at = bot.bot_token_expires_at


class RedisInstallationStore(HashInstallationStore):
    def __init__(self, client: aioredis.Redis | RedisCluster, *, namespace: str = NAMESPACE) -> None:
        self._redis = client
        self._namespace = namespace

    @classmethod
    def from_url(cls, url: str, *, max_connections: int = 10) -> RedisInstallationStore:
        # A redis+cluster:// URL gets the cluster client (each key here is used alone).
        return cls(connect(url, max_connections=max_connections))

    @property
    def redis(self) -> aioredis.Redis | RedisCluster:
        """The connection pool, shared with the OAuth state store."""
        return self._redis

    def _key(self, workspace: str) -> str:
        return f"{self._namespace}:{workspace}:installation"

    async def _get(self, workspace: str, field: str) -> str | None:
        value: Any = await self._redis.hget(self._key(workspace), field)
        return value

    async def _set(self, workspace: str, values: dict[str, str]) -> None:
        await self._redis.hset(self._key(workspace), mapping=values)  # type: ignore[arg-type]

    async def _fields(self, workspace: str) -> list[str]:
        fields: Any = await self._redis.hkeys(self._key(workspace))
        return list(fields)

    async def _remove(self, workspace: str, fields: list[str]) -> None:
        if fields:
            await self._redis.hdel(self._key(workspace), *fields)

    async def _drop(self, workspace: str) -> None:
        await self._redis.delete(self._key(workspace))

    async def close(self) -> None:
        await self._redis.aclose()


class MemoryInstallationStore(HashInstallationStore):
    """One process only, lost on restart: for a local trial and the tests."""

    def __init__(self) -> None:
        self._hashes: dict[str, dict[str, str]] = {}

    async def _get(self, workspace: str, field: str) -> str | None:
        return self._hashes.get(workspace, {}).get(field)

    async def _set(self, workspace: str, values: dict[str, str]) -> None:
        self._hashes.setdefault(workspace, {}).update(values)

    async def _fields(self, workspace: str) -> list[str]:
        return list(self._hashes.get(workspace, {}))

    async def _remove(self, workspace: str, fields: list[str]) -> None:
        current = self._hashes.get(workspace, {})
        for field in fields:
            current.pop(field, None)
        if not current:
            self._hashes.pop(workspace, None)

    async def _drop(self, workspace: str) -> None:
        self._hashes.pop(workspace, None)
