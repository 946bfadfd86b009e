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
from assist_bot.tools import Caller, Tool, ToolContext, ToolRegistry


class ToolBackend(Protocol):
    """The engine's services that slash commands use (the Slack side never sees OpenAI)."""

    def tool_context(self, *, team: str, channel: str, user: str, thread_ts: str = "") -> ToolContext[Any]: ...

    async def tool_arguments(self, tool: Tool, text: str, *, caller: Caller) -> dict[str, Any]:
        """The model fills in the arguments, metered like an answer: raises TurnError
        ("budget_<scope>") without calling it when the caller's budgets are used up."""


class ChannelKnowledge(FileIntake, Protocol):
    """Intake plus managing a channel's knowledge (engine.knowledge.Knowledge)."""

    async def files(self, channel: ChannelKey) -> dict[str, dict[str, Any]]: ...

    async def elsewhere(self, channel: ChannelKey) -> dict[str, int]:
        """Files kept at another model server than the channel's assistant's: server → how many."""

    async def forget(self, channel: ChannelKey, name_or_id: str) -> dict[str, Any] | None: ...

    async def forget_slack_file(self, team: str, slack_file_id: str) -> bool: ...


class Cleaner(Protocol):
    """Removes what the bot keeps at OpenAI and in the store (janitor.Janitor)."""

    async def forget_channel(self, team: str, channel: str) -> int: ...

    async def forget_team(self, team: str) -> int: ...


@dataclass(frozen=True, slots=True)
class SurfaceDeps:
    """Everything any surface may use, built once by the app. Each surface's `register`
    takes the narrow view below that names only what it uses (the type checker holds it
    to that)."""

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


# -- One read-only member each, combined below into what each surface uses. ----------------
class _Settings(Protocol):
    @property
    def settings(self) -> Settings: ...


class _Dispatcher(Protocol):
    @property
    def dispatcher(self) -> Dispatcher: ...


class _People(Protocol):
    @property
    def people(self) -> People: ...


class _Store(Protocol):
    @property
    def store(self) -> Store: ...


class _Assistants(Protocol):
    @property
    def assistants(self) -> Assistants: ...


class _Tools(Protocol):
    @property
    def tools(self) -> ToolRegistry: ...


class _ToolBackend(Protocol):
    @property
    def tool_backend(self) -> ToolBackend: ...


class _Approvals(Protocol):
    @property
    def approvals(self) -> Approvals: ...


class _Knowledge(Protocol):
    @property
    def knowledge(self) -> ChannelKnowledge: ...


class _SlackFiles(Protocol):
    @property
    def slack_files(self) -> SlackFiles: ...


class _Ledger(Protocol):
    @property
    def ledger(self) -> Ledger | None: ...


class _Cleaner(Protocol):
    @property
    def cleaner(self) -> Cleaner | None: ...


class MentionDeps(_Dispatcher, Protocol): ...


class AgentViewDeps(_Dispatcher, _Store, _Assistants, _People, Protocol): ...


class MessageDeps(AgentViewDeps, _Knowledge, _SlackFiles, Protocol): ...  # a DM goes through the agent view


class HousekeepingDeps(_Knowledge, Protocol): ...


class ApprovalDeps(_Approvals, Protocol): ...


class CommandDeps(
    _Settings, _Dispatcher, _Store, _Assistants, _People, _Tools, _Knowledge, _Ledger, _Cleaner, Protocol
): ...  # /assist and its subcommands, those of operating.py and feedback.py included


class OperatingDeps(_Dispatcher, _Cleaner, Protocol): ...


class FeedbackDeps(_Store, _Assistants, Protocol): ...


class ToolCommandDeps(_Settings, _Dispatcher, _Tools, _ToolBackend, _Approvals, Protocol): ...


class ShortcutDeps(_Dispatcher, _People, Protocol): ...


class HomeDeps(_Settings, _Dispatcher, _Assistants, _Tools, Protocol): ...
