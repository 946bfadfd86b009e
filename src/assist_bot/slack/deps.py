"""What the Slack surfaces need, passed explicitly to each `register(app, deps)`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from assist_bot.assistants import Assistants
from assist_bot.dispatch import Dispatcher
from assist_bot.settings import Settings
from assist_bot.slack.approvals import Approvals
from assist_bot.slack.files import FileIntake, SlackFiles
from assist_bot.slack.people import People
from assist_bot.store import ChannelKey, Store
from assist_bot.store.ledger import Ledger
from assist_bot.tools import Tool, ToolContext, ToolRegistry


class ToolBackend(Protocol):
    """The engine's services that slash commands use (the Slack side never sees OpenAI)."""

    def tool_context(self, *, team: str, channel: str, user: str, thread_ts: str = "") -> ToolContext[Any]: ...

    async def tool_arguments(self, tool: Tool, text: str, *, channel: ChannelKey | None = None) -> dict[str, Any]: ...


class ChannelKnowledge(FileIntake, Protocol):
    """Intake plus managing a channel's knowledge (engine.knowledge.Knowledge)."""

    async def files(self, channel: ChannelKey) -> dict[str, dict[str, Any]]: ...

    async def forget(self, channel: ChannelKey, name_or_id: str) -> dict[str, Any] | None: ...

    async def forget_slack_file(self, team: str, slack_file_id: str) -> bool: ...


class Cleaner(Protocol):
    """Removes what the bot keeps at OpenAI and in the store (janitor.Janitor)."""

    async def forget_channel(self, team: str, channel: str) -> int: ...

    async def forget_team(self, team: str) -> int: ...


@dataclass(frozen=True, slots=True)
class SurfaceDeps:
    settings: Settings
    dispatcher: Dispatcher
    people: People
    store: Store
    assistants: Assistants
    tools: ToolRegistry
    tool_backend: ToolBackend
    approvals: Approvals
    knowledge: ChannelKnowledge
    slack_files: SlackFiles
    ledger: Ledger | None = None  # usage figures (/assist usage)
    cleaner: Cleaner | None = None  # /assist forget (a channel), app_uninstalled, tokens_revoked
