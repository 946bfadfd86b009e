"""The ledger: what the bot spends (tokens, tool calls, stored bytes) and what it
leaves at OpenAI (conversations, files, vector stores, containers), by owner.

Kept apart from the turn-path `Store` interface: it is written once per turn (one
pipelined round trip) and read by `/assist usage`, budgets and the janitor. Twins:
`RedisLedger` (ledger_redis.py) and `MemoryLedger` (ledger_memory.py), one contract
test (tests/store/test_ledger_contract.py). Keys live in the store's namespace, under
the team id, so a workspace's data is found (and removed) in one place.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from assist_bot.store.base import Store
from assist_bot.store.keys import NAMESPACE, slack_id

# Usage of past months stays readable for a year and a bit, then goes.
USAGE_TTL = 400 * 24 * 60 * 60
TOKENS = "tokens"  # the field budgets count: input + output tokens


@dataclass(frozen=True, slots=True, order=True)
class Owner:
    """Who a resource at OpenAI belongs to: a thread, or (thread_ts "") a channel."""

    team: str
    channel: str
    thread_ts: str = ""

    @property
    def token(self) -> str:
        # Slack channel ids and timestamps hold no ':'.
        return f"{self.channel}:{self.thread_ts}" if self.thread_ts else self.channel

    @classmethod
    def parse(cls, team: str, token: str) -> Owner:
        channel, _, thread_ts = token.partition(":")
        return cls(team, channel, thread_ts)


@dataclass(frozen=True, slots=True, order=True)
class Resource:
    kind: str  # conversation | file | vector_store | container
    id: str
    # The model server it was made at (assistants.Backend.server, no secrets); "" for the
    # bot's own server, and for every record written before servers were recorded.
    server: str = ""

    @property
    def token(self) -> str:
        # "kind:id", then " server" when not the bot's own: ids hold no spaces, a server may.
        return f"{self.kind}:{self.id}" + (f" {self.server}" if self.server else "")

    @classmethod
    def parse(cls, token: str) -> Resource:
        kind, _, rest = token.partition(":")
        ident, _, server = rest.partition(" ")
        return cls(kind, ident, server)


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One turn's (or one upload's) figures, to add to each scope of a month."""

    team: str
    month: str  # "2026-12"
    scopes: Sequence[str]  # "workspace", "channel:C1", "user:U1", "assistant:general"
    counts: Mapping[str, int]
    # Leaderboards for admins: kind ("channel" | "user") → member, ranked by tokens.
    ranked: Mapping[str, str]
    touched: Sequence[Owner] = ()  # owners whose resources were used now
    resources: Sequence[tuple[Owner, Resource]] = ()  # things at OpenAI the turn used or made


class LedgerKeys:
    """A workspace's ledger keys share one Redis Cluster hash tag, `{<team>}`: a turn's usage
    (every scope, the rankings, what it made at OpenAI) is recorded in one MULTI, in one slot."""

    def __init__(self, namespace: str = NAMESPACE) -> None:
        self.namespace = namespace

    def _team(self, team: str) -> str:
        return f"{self.namespace}:{{{slack_id(team)}}}"

    def usage(self, team: str, month: str, scope: str) -> str:
        return f"{self._team(team)}:usage:{month}:{scope}"

    def top(self, team: str, month: str, kind: str) -> str:
        return f"{self._team(team)}:usagetop:{month}:{kind}"

    def last_use(self, team: str) -> str:
        """Sorted set: owner token → when its resources were last used."""
        return f"{self._team(team)}:lastuse"

    def owned(self, owner: Owner) -> str:
        return f"{self._team(owner.team)}:owned:{owner.token}"

    def team_patterns(self, team: str) -> tuple[str, ...]:
        """SCAN patterns matching every key of a workspace: the ledger's (`{T1}:…`), the
        store's (`{T1:…}:…`, hash-tagged by thread, channel, file or approval) and the
        untagged ones (`T1:…`: the installation, and keys older versions wrote)."""
        # The team is checked (InvalidIdError): a `*` in it would match other workspaces' keys.
        team = slack_id(team)
        return (f"{self._team(team)}:*", f"{self.namespace}:{{{team}:*", f"{self.namespace}:{team}:*")

    def teams(self) -> str:
        # Not per team: the janitor walks every workspace that left something at OpenAI.
        return f"{self.namespace}:teams"

    def lease(self, name: str) -> str:
        return f"{self.namespace}:lease:{name}"


class Ledger(abc.ABC):
    def __init__(self, keys: LedgerKeys | None = None) -> None:
        self.keys = keys or LedgerKeys()

    # -- usage ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def record(self, entry: UsageEntry, *, now: float) -> dict[str, int]:
        """Add the counts to every scope (HINCRBY), rank the tokens, mark the touched
        owners as used `now` — one round trip. Returns each scope's tokens after."""

    @abc.abstractmethod
    async def usage(self, team: str, month: str, scopes: Sequence[str]) -> dict[str, dict[str, int]]:
        """The month's figures of each scope (empty dict for a scope with none)."""

    @abc.abstractmethod
    async def top(self, team: str, month: str, kind: str, n: int) -> list[tuple[str, int]]:
        """The `n` members of a leaderboard with most tokens, most first."""

    @abc.abstractmethod
    async def mark_once(self, team: str, month: str, scope: str, flag: str) -> bool:
        """True the first time a flag is set on a scope's month (an alert sent once)."""

    # -- resources at OpenAI ---------------------------------------------------------------
    @abc.abstractmethod
    async def add_resource(self, owner: Owner, resource: Resource, *, now: float) -> None:
        """Record something the bot created at OpenAI; it counts as used now."""

    @abc.abstractmethod
    async def resources(self, owner: Owner) -> list[Resource]: ...

    @abc.abstractmethod
    async def owners(self, team: str, *, channel: str | None = None) -> dict[Owner, float]:
        """Every owner of the team (or of one channel: the channel and its threads) with its last use."""

    @abc.abstractmethod
    async def remove_resources(self, owner: Owner, resources: Sequence[Resource]) -> None:
        """Forget resources that are gone; an owner with none left is forgotten too."""

    @abc.abstractmethod
    async def teams(self) -> list[str]:
        """Workspaces that have resources recorded."""

    @abc.abstractmethod
    async def drop_team(self, team: str) -> int:
        """Delete every key of the workspace (the store's too: settings, mappings,
        knowledge index, usage); returns how many keys."""

    @abc.abstractmethod
    async def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete store keys that pointed at deleted resources (a thread's mapping and files)."""

    # -- one janitor at a time ------------------------------------------------------------------
    @abc.abstractmethod
    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool: ...

    @abc.abstractmethod
    async def refresh_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Extend our lease; False when we no longer hold it."""

    @abc.abstractmethod
    async def release_lease(self, name: str, holder: str) -> None: ...


def open_ledger(store: Store) -> Ledger:
    """The ledger twin of a store: on the same Redis, or beside the memory store."""
    from assist_bot.store.memory import MemoryStore
    from assist_bot.store.redis import RedisStore

    if isinstance(store, RedisStore):
        from assist_bot.store.ledger_redis import RedisLedger

        return RedisLedger(store._redis, LedgerKeys(store.keys.namespace))
    from assist_bot.store.ledger_memory import MemoryLedger

    if not isinstance(store, MemoryStore):
        raise TypeError(f"no ledger twin for {type(store).__name__}")
    return MemoryLedger(store, LedgerKeys(store.keys.namespace))
