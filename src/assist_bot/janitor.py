"""The janitor: deletes at OpenAI what the bot made there (conversations, files, vector
stores, containers) once its owner has gone unused past its retention, and everything
of a channel or a workspace on request.

Its owner says what is kept how long: a thread's conversation, files and containers
ASSIST_BOT_RETENTION_DAYS after the thread's last turn; a channel's knowledge (vector
store and documents) ASSIST_BOT_VECTOR_STORE_EXPIRY_DAYS after its last use. One
replica sweeps at a time (a lease in the store); `assist-bot cleanup` runs one sweep.

Each thing is deleted at the model server it was made at (the ledger records it: an
assistant on Azure or on a second account keeps its conversations there); records that
name none are the default server's.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import openai

from assist_bot.assistants import Assistants
from assist_bot.engine.backends import Backends, default_client
from assist_bot.engine.file_places import vector_store_setting, vector_stores
from assist_bot.settings import Settings
from assist_bot.store import ChannelKey, Store, ThreadKey, open_store
from assist_bot.store.ledger import Ledger, Owner, Resource, open_ledger

log = logging.getLogger(__name__)

LEASE = "janitor"
LEASE_SECONDS = 15 * 60.0  # longer than a sweep takes; a crashed sweeper frees it by then


@dataclass(frozen=True, slots=True)
class Removal:
    owner: Owner
    resource: Resource
    last_use: float
    deleted: bool  # False in a dry run, or when OpenAI refused (kept for the next sweep)


class Janitor:
    def __init__(
        self,
        *,
        store: Store,
        ledger: Ledger,
        settings: Settings,
        backends: Backends,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._backends = backends  # the client of each server a record names ("" the default)
        self._store = store
        self._ledger = ledger
        self._thread_keep = settings.retention_seconds
        self._channel_keep = settings.vector_store_expiry_days * 86400
        self._interval = settings.cleanup_interval
        self._clock = clock
        self._sleep = sleep  # the interval's clock (tests pass one they control)
        self._holder = uuid.uuid4().hex

    # -- sweeps ----------------------------------------------------------------------------
    async def sweep(self, *, dry_run: bool = False) -> list[Removal]:
        """One pass over every workspace: remove what outlived its retention."""
        now = self._clock()
        removals: list[Removal] = []
        for team in await self._ledger.teams():
            for owner, last_use in sorted((await self._ledger.owners(team)).items()):
                keep = self._thread_keep if owner.thread_ts else self._channel_keep
                if last_use < now - keep:
                    removals += await self._remove(owner, last_use, dry_run=dry_run)
        return removals

    async def sweep_with_lease(self, *, dry_run: bool = False) -> list[Removal] | None:
        """A sweep unless another replica (or `assist-bot cleanup`) is sweeping: then None."""
        if not await self._ledger.acquire_lease(LEASE, self._holder, LEASE_SECONDS):
            return None
        keeper = asyncio.create_task(self._keep_lease(), name="janitor lease")
        try:
            return await self.sweep(dry_run=dry_run)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            await self._ledger.release_lease(LEASE, self._holder)

    async def _keep_lease(self) -> None:
        # A long sweep (many workspaces) keeps its lease, so no second replica starts beside it.
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            if not await self._ledger.refresh_lease(LEASE, self._holder, LEASE_SECONDS):
                log.warning("clean-up: lost the janitor's lease")
                return

    async def run_forever(self) -> None:
        """Sweep every ASSIST_BOT_CLEANUP_INTERVAL seconds (an owned task of the app)."""
        while True:
            await self._sleep(self._interval)
            try:
                removals = await self.sweep_with_lease()
            except Exception:  # a failed sweep is retried at the next interval
                log.warning("clean-up sweep failed", exc_info=True)
                continue
            if removals:
                log.info("clean-up: deleted %d resource(s) at OpenAI", sum(r.deleted for r in removals))

    # -- on request --------------------------------------------------------------------------
    async def forget_channel(self, team: str, channel: str) -> int:
        """Everything of a channel (its knowledge, its threads' conversations and files), now."""
        removals: list[Removal] = []
        for owner, last_use in sorted((await self._ledger.owners(team, channel=channel)).items()):
            removals += await self._remove(owner, last_use, dry_run=False)
        await self._store.delete_channel_conversations(ChannelKey(team, channel))
        # Knowledge taken in before the ledger recorded it is found through the channel's index.
        await self._forget_knowledge(ChannelKey(team, channel), delete=True)
        return sum(r.deleted for r in removals)

    async def forget_team(self, team: str) -> int:
        """A workspace uninstalled the app: its resources at OpenAI, then every key it has."""
        removals: list[Removal] = []
        for owner, last_use in sorted((await self._ledger.owners(team)).items()):
            removals += await self._remove(owner, last_use, dry_run=False)
        # The records go even for what OpenAI refused to delete: nobody is left to own it.
        keys = await self._ledger.drop_team(team)
        deleted = sum(r.deleted for r in removals)
        log.info(
            "workspace %s removed: %d resource(s) deleted at OpenAI, %d not, %d key(s)",
            team,
            deleted,
            len(removals) - deleted,
            keys,
        )
        return deleted

    # -- the work -------------------------------------------------------------------------------
    async def _remove(self, owner: Owner, last_use: float, *, dry_run: bool) -> list[Removal]:
        resources = await self._ledger.resources(owner)
        if dry_run:
            return [Removal(owner, r, last_use, deleted=False) for r in resources]
        outcomes = [Removal(owner, r, last_use, deleted=await self._delete(r)) for r in resources]
        await self._ledger.remove_resources(owner, [r.resource for r in outcomes if r.deleted])
        if all(r.deleted for r in outcomes):
            await self._forget_in_store(owner)
        return outcomes

    async def _delete(self, resource: Resource) -> bool:
        """Delete one thing at the server it was made at; gone already (404) counts as deleted."""
        client = self._backends.client_at(resource.server)
        if client is None:
            # Asking the default server instead would answer 404 and the thing would leak at its own.
            log.warning("clean-up: %s is kept for the next sweep", resource.token)
            return False
        deleters = {
            "conversation": client.conversations.delete,
            "file": client.files.delete,
            "vector_store": client.vector_stores.delete,
            "container": client.containers.delete,
        }
        delete = deleters.get(resource.kind)
        if delete is None:
            log.warning("clean-up: unknown kind of resource %s", resource.token)
            return False
        try:
            await delete(resource.id)
        except openai.NotFoundError:
            pass
        except openai.OpenAIError as exc:
            log.warning(
                "clean-up: deleting %s failed (%s); kept for the next sweep", resource.token, type(exc).__name__
            )
            return False
        return True

    async def _forget_in_store(self, owner: Owner) -> None:
        """The mappings that pointed at what was deleted go too, so nothing asks OpenAI for it again."""
        if owner.thread_ts:
            thread = ThreadKey(owner.team, owner.channel, owner.thread_ts)
            await self._ledger.delete_keys(
                [self._store.keys.conversation(thread), self._store.keys.thread_files(thread)]
            )
        else:
            await self._forget_knowledge(ChannelKey(owner.team, owner.channel))

    async def _forget_knowledge(self, channel: ChannelKey, *, delete: bool = False) -> None:
        # Each vector store and file at the server it is kept at (a channel that switched
        # assistants may have some at each); records that name none are the bot's own server's.
        for server, vector_store in vector_stores(await self._store.get_channel_settings(channel)).items():
            if delete:
                await self._delete(Resource("vector_store", vector_store, server))
            await self._store.set_channel_setting(channel, vector_store_setting(server), None)
        for slack_file_id, record in (await self._store.knowledge_files(channel)).items():
            if delete and record.get("openai_file_id"):
                await self._delete(Resource("file", record["openai_file_id"], record.get("server", "")))
            await self._store.remove_knowledge_file(channel, slack_file_id)


async def cleanup_once(settings: Settings, *, dry_run: bool, say: Callable[[str], object]) -> int:
    """`assist-bot cleanup [--dry-run]`: one sweep, each resource on its own line; exit code."""
    if not settings.redis_url:
        say("Nothing to clean up from here: without REDIS_URL the bot keeps its records in its own process.")
        return 0
    # The assistants file names the other servers; their clients are built when something of theirs goes.
    assistants = Assistants.load(settings.assistants_file, model=settings.model)
    store = open_store(redis_url=settings.redis_url, retention_seconds=settings.retention_seconds)
    client = default_client(settings)
    backends = Backends(settings=settings, assistants=assistants, default_client=client)
    try:
        janitor = Janitor(store=store, ledger=open_ledger(store), settings=settings, backends=backends)
        removals = await janitor.sweep_with_lease(dry_run=dry_run)
    finally:
        await backends.close()
        await client.close()
        await store.close()
    if removals is None:
        say("Another replica is cleaning up right now; try again in a few minutes.")
        return 1
    for removal in removals:
        say(_describe(removal, dry_run=dry_run))
    deleted = sum(r.deleted for r in removals)
    if dry_run:
        say(f"{len(removals)} resource(s) would be deleted (dry run: nothing was).")
        return 0
    say(
        f"{deleted} resource(s) deleted"
        + (f", {len(removals) - deleted} kept after an error." if deleted < len(removals) else ".")
    )
    return 0 if deleted == len(removals) else 1


def _describe(removal: Removal, *, dry_run: bool) -> str:
    owner = removal.owner
    where = f"{owner.team} {owner.channel}" + (f" thread {owner.thread_ts}" if owner.thread_ts else "")
    when = datetime.fromtimestamp(removal.last_use, UTC).strftime("%Y-%m-%d")
    verb = "would delete" if dry_run else ("deleted" if removal.deleted else "could not delete")
    at = f", at {removal.resource.server}" if removal.resource.server else ""
    return f"{verb} {removal.resource.kind} {removal.resource.id} ({where}, last used {when}{at})"
