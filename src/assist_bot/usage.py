"""Usage and cost: what a response used (read from `response.completed`), a turn's
figures recorded by workspace, channel, user, assistant and month, monthly token
budgets, and an estimated cost from per-model prices.

Neutral: knows neither Slack nor OpenAI's SDK. The engine yields a `UsageReport` per
response; the dispatcher hands them to the `Meter`, which records and enforces. The one
model call outside a turn (a slash command's arguments, engine/arguments.py) goes through
the same `Meter`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from assist_bot.events import UsageReport
from assist_bot.store.ledger import TOKENS, Ledger, Owner, Resource, UsageEntry

log = logging.getLogger(__name__)

# USD per 1M tokens: (input, cached input, output) — OpenAI's list prices, standard tier,
# as listed in 2026 (README "Costs and budgets"; check openai.com/api/pricing).
# ASSIST_BOT_PRICES adds or replaces models.
DEFAULT_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-5.4": (2.50, 0.25, 15.00),
    "gpt-5.4-mini": (0.75, 0.075, 4.50),
    "gpt-5.4-nano": (0.20, 0.02, 1.25),
    "gpt-5": (1.25, 0.125, 10.00),
    "gpt-5-mini": (0.25, 0.025, 2.00),
    "gpt-5-nano": (0.05, 0.005, 0.40),
    "gpt-4.1": (2.00, 0.50, 8.00),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
}
# USD per hosted tool call: a code interpreter session (1 GB container), a file search, a web search.
TOOL_PRICES = {"code_interpreter": 0.03, "file_search": 2.50 / 1000, "web_search": 10.00 / 1000}
ALERT_AT = 0.8  # admins hear once a month when a budget is 80 % used

_MODEL_FIELDS = ("input", "cached", "output", "reasoning")  # "<field>@<model>" in a scope's hash


def report_from_response(response: Mapping[str, Any]) -> UsageReport:
    """A UsageReport from a final response object (`response.completed`, `.incomplete` or `.failed`)."""
    usage = response.get("usage") or {}
    output = [item for item in response.get("output") or [] if isinstance(item, dict)]
    kinds = [item.get("type") for item in output]
    containers = tuple(sorted({i["container_id"] for i in output if i.get("container_id")}))
    code_calls = kinds.count("code_interpreter_call")
    return UsageReport(
        model=str(response.get("model") or ""),
        input_tokens=int(usage.get("input_tokens") or 0),
        cached_tokens=int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        reasoning_tokens=int((usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0),
        # OpenAI bills the code interpreter per container session, not per call.
        code_interpreter=len(containers) or code_calls,
        file_search=kinds.count("file_search_call"),
        web_search=kinds.count("web_search_call"),
        containers=containers,
    )


def counts_of(reports: Iterable[UsageReport]) -> dict[str, int]:
    """A turn's figures as hash fields: tokens per model, tool calls, responses."""
    counts: dict[str, int] = {}

    def add(name: str, value: int) -> None:
        counts[name] = counts.get(name, 0) + value

    for r in reports:
        add(TOKENS, r.input_tokens + r.output_tokens)
        for name, value in zip(
            _MODEL_FIELDS, (r.input_tokens, r.cached_tokens, r.output_tokens, r.reasoning_tokens), strict=True
        ):
            add(f"{name}@{r.model}", value)
        add("code_interpreter", r.code_interpreter)
        add("file_search", r.file_search)
        add("web_search", r.web_search)
        add("responses", 1)
    return counts


def month_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


def parse_prices(raw: str) -> dict[str, tuple[float, float, float]]:
    """ASSIST_BOT_PRICES: a JSON object, model → {"input", "cached_input", "output"} USD per 1M tokens."""
    prices = dict(DEFAULT_PRICES)
    if not raw.strip():
        return prices
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError('must be a JSON object such as {"gpt-5.4-mini": {"input": 0.75, "output": 4.5}}')
    for model, entry in data.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
            raise ValueError(f"{model}: give at least input and output (USD per 1M tokens)")
        cached = entry["cached_input"] if "cached_input" in entry else entry["input"]
        values = (float(entry["input"]), float(cached), float(entry["output"]))
        if min(values) < 0:
            raise ValueError(f"{model}: prices cannot be negative")
        prices[model] = values
    return prices


@dataclass(frozen=True, slots=True)
class Figures:
    """One scope's month, read back from the ledger."""

    raw: Mapping[str, int]

    def total(self, name: str) -> int:
        return sum(v for k, v in self.raw.items() if k.partition("@")[0] == name)

    @property
    def tokens(self) -> int:
        return self.raw.get(TOKENS, 0)

    def models(self) -> list[str]:
        return sorted({k.partition("@")[2] for k in self.raw if "@" in k})

    def cost(self, prices: Mapping[str, tuple[float, float, float]]) -> tuple[float, list[str]]:
        """Estimated USD, and the models without a price (left out of the estimate)."""
        usd, unpriced = 0.0, []
        for model in self.models():
            price = _price_for(model, prices)
            if price is None:
                unpriced.append(model)
                continue
            cached = self.raw.get(f"cached@{model}", 0)
            fresh = self.raw.get(f"input@{model}", 0) - cached
            usd += (fresh * price[0] + cached * price[1] + self.raw.get(f"output@{model}", 0) * price[2]) / 1e6
        usd += sum(self.raw.get(tool, 0) * each for tool, each in TOOL_PRICES.items())
        return usd, unpriced


def _price_for(model: str, prices: Mapping[str, tuple[float, float, float]]) -> tuple[float, float, float] | None:
    # A dated snapshot (gpt-5.4-mini-2026-03-17) costs what its model does.
    while model:
        if model in prices:
            return prices[model]
        model = model.rpartition("-")[0]
    return None


@dataclass(frozen=True, slots=True)
class Budgets:
    """Monthly token budgets (0: none)."""

    workspace: int = 0
    channel: int = 0
    user: int = 0

    def limits(self, channel: str, user: str) -> dict[str, int]:
        named = {"workspace": self.workspace, f"channel:{channel}": self.channel, f"user:{user}": self.user}
        return {scope: limit for scope, limit in named.items() if limit > 0}


Notify = Callable[[str, str], Awaitable[None]]  # (team, text) → tell the workspace's admins


@dataclass
class Meter:
    """Records each turn's usage (one ledger round trip) and keeps the budgets."""

    ledger: Ledger
    budgets: Budgets = field(default_factory=Budgets)
    notify: Notify | None = None
    clock: Callable[[], float] = time.time

    async def over_budget(self, *, team: str, channel: str, user: str) -> str | None:
        """The scope ("workspace", "channel" or "user") whose budget is used up, else None. A
        ledger that does not answer counts as within budget: serve rather than refuse everyone."""
        limits = self.budgets.limits(channel, user)
        if not limits:
            return None
        try:
            used = await self.ledger.usage(team, month_of(self.clock()), list(limits))
        except Exception:
            log.warning("budget check failed (the ledger does not answer); serving anyway", exc_info=True)
            return None
        for scope, limit in limits.items():
            if used[scope].get(TOKENS, 0) >= limit:
                return scope.partition(":")[0]
        return None

    async def record(
        self,
        *,
        thread: Owner,
        user: str,
        assistant: str,
        reports: list[UsageReport],
        conversation: str | None,
        server: str = "",
    ) -> None:
        """`server`: the model server the turn ran at (its assistant's), where its conversation
        and containers live and where clean-up deletes them ("": the bot's own)."""
        made = [Resource("container", c, server) for c in sorted({c for r in reports for c in r.containers})]
        if conversation:
            made.append(Resource("conversation", conversation, server))
        await self._count(
            team=thread.team,
            channel=thread.channel,
            user=user,
            assistant=assistant,
            # A turn refused (a budget) or failed before any response used nothing: no answer counted.
            counts={**counts_of(reports), "turns": 1} if reports else {},
            # The thread's files and conversation, and the channel's knowledge, were used now.
            touched=(thread, Owner(thread.team, thread.channel)),
            resources=[(thread, resource) for resource in made],
        )

    async def record_call(self, *, team: str, channel: str, user: str, assistant: str, report: UsageReport) -> None:
        """A model call outside any turn (the arguments of a slash command in plain words): its
        tokens count in the same scopes and toward the same budgets as an answer's, but it is
        no answer ("turns") and neither used nor made anything kept at OpenAI."""
        await self._count(team=team, channel=channel, user=user, assistant=assistant, counts=counts_of([report]))

    async def _count(
        self,
        *,
        team: str,
        channel: str,
        user: str,
        assistant: str,
        counts: dict[str, int],
        touched: Sequence[Owner] = (),
        resources: Sequence[tuple[Owner, Resource]] = (),
    ) -> None:
        """Model usage into its four scopes (one ledger round trip), then any budget alert it crossed."""
        now = self.clock()
        month = month_of(now)
        entry = UsageEntry(
            team=team,
            month=month,
            scopes=("workspace", f"channel:{channel}", f"user:{user}", f"assistant:{assistant}"),
            counts=counts,
            ranked={"channel": channel, "user": user},
            touched=touched,
            resources=resources,
        )
        after = await self.ledger.record(entry, now=now)
        await self._alert(team, month, after, channel=channel, user=user)

    async def _alert(self, team: str, month: str, after: dict[str, int], *, channel: str, user: str) -> None:
        for scope, limit in self.budgets.limits(channel, user).items():
            if after.get(scope, 0) >= ALERT_AT * limit and await self.ledger.mark_once(team, month, scope, "alert80"):
                text = budget_alert(scope, after[scope], limit)
                log.warning("budget: %s (team %s)", text, team)
                if self.notify is not None:
                    await self.notify(team, text)

    async def record_made(self, owner: Owner, resource: Resource) -> None:
        """Something the bot made at OpenAI that holds no bytes of its own (a vector store)."""
        await self.ledger.add_resource(owner, resource, now=self.clock())

    async def record_stored(self, *, owner: Owner, user: str, resource: Resource, size: int) -> None:
        """A file the bot stored at OpenAI: its bytes count for the month, and it is recorded for clean-up."""
        now = self.clock()
        entry = UsageEntry(
            team=owner.team,
            month=month_of(now),
            scopes=("workspace", f"channel:{owner.channel}", f"user:{user}"),
            counts={"stored_bytes": size, "stored_files": 1},
            ranked={},
            resources=[(owner, resource)],
        )
        await self.ledger.record(entry, now=now)


def budget_alert(scope: str, used: int, limit: int) -> str:
    kind, _, ident = scope.partition(":")
    who = {"workspace": "The workspace", "channel": f"<#{ident}>", "user": f"<@{ident}>"}[kind]
    return f"⚠️ {who} has used {used * 100 // limit} % of its monthly token budget ({used:,} of {limit:,} tokens)."
