"""Surface: operating the bot — `/assist usage`, `/assist forget` for a whole channel,
and removing a workspace's data when it uninstalls the app or revokes its bot token.
Admin alerts (a budget 80 % used) go to each admin by DM."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError

from assist_bot import texts
from assist_bot.slack.clients import SlackClients
from assist_bot.slack.commands import SUBCOMMANDS as BASE_SUBCOMMANDS
from assist_bot.slack.commands import Handler, may_change
from assist_bot.slack.deps import CommandDeps, OperatingDeps
from assist_bot.slack.escape import escape
from assist_bot.usage import Figures, Notify, month_of

log = logging.getLogger(__name__)

TOP = 5  # channels and users an admin sees


async def usage(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    """This month's figures for the channel (and the caller's own budget); admins also get the
    workspace, its top channels and users, and each assistant's tokens."""
    if deps.ledger is None:
        return "Usage is not recorded here."
    team, channel, user = command["team_id"], command["channel_id"], command["user_id"]
    month = month_of(time.time())
    admin = await may_change(deps, command)  # ASSIST_BOT_ADMINS, or else the workspace's admins
    assistants = [f"assistant:{name}" for name in deps.assistants.names()] if admin else []
    scopes = [f"channel:{channel}", f"user:{user}", *(["workspace"] if admin else []), *assistants]
    figures = await deps.ledger.usage(team, month, scopes)
    prices, settings = deps.settings.model_prices, deps.settings
    here = "this DM" if channel.startswith("D") else f"<#{channel}>"
    channel_figures = Figures(figures[f"channel:{channel}"])
    parts = [
        texts.usage_block(here, month, channel_figures, _cost(channel_figures, prices), settings.token_budget_channel)
    ]
    if settings.token_budget_user:
        parts.append(texts.your_budget(Figures(figures[f"user:{user}"]).tokens, settings.token_budget_user))
    if admin:
        workspace = Figures(figures["workspace"])
        cost = _cost(workspace, prices)
        parts.append(texts.usage_block("the workspace", month, workspace, cost, settings.token_budget_workspace))
        channels = await deps.ledger.top(team, month, "channel", TOP)
        users = await deps.ledger.top(team, month, "user", TOP)
        by_assistant = [(scope.partition(":")[2], Figures(figures[scope]).tokens) for scope in assistants]
        parts.append(texts.usage_top(channels, users, by_assistant))
    return "\n\n".join(parts)


def _cost(figures: Figures, prices: dict[str, tuple[float, float, float]]) -> tuple[float, list[str]]:
    usd, unpriced = figures.cost(prices)
    return usd, [escape(model) for model in unpriced]  # model names come from the AI service's answers


async def forget(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    """`/assist forget <file>` removes one file (commands.py); alone, everything of this channel (admins)."""
    if args:
        return await BASE_SUBCOMMANDS["forget"](deps, command, args)
    if not await may_change(deps, command):
        return texts.ADMINS_ONLY
    if deps.cleaner is None:
        return "Clean-up is not available here."
    deleted = await deps.cleaner.forget_channel(command["team_id"], command["channel_id"])
    return texts.channel_forgotten(deleted)


SUBCOMMANDS: dict[str, Handler] = {"usage": usage, "forget": forget}


def admin_notifier(clients: SlackClients, admins: frozenset[str]) -> Notify:
    """(team, text) → a DM to every admin, with that workspace's token; a failed DM is
    logged, never raised into a turn."""

    async def notify(team: str, text: str) -> None:
        client = await clients.for_team(team)
        for admin in sorted(admins):
            try:
                await client.chat_postMessage(channel=admin, text=text)
            except SlackApiError as exc:
                log.warning("could not tell admin %s: %s", admin, exc.response.get("error"))

    return notify


def register(app: AsyncApp, deps: OperatingDeps, *, installations: bool = False) -> None:
    """`installations`: OAuth mode, where the workspace's installation goes too (Bolt's built-in
    listeners; Bolt runs one listener per event, so they are called from ours)."""
    uninstalled = app.default_app_uninstalled_event_listener() if installations else None
    revoked = app.default_tokens_revoked_event_listener() if installations else None

    async def remove_workspace(team: str, why: str) -> None:
        if deps.cleaner is None or not team:
            return
        cleaner = deps.cleaner
        log.info("workspace %s: %s; removing its data", team, why)

        async def work() -> None:  # after the ack: deleting at OpenAI takes a while
            await cleaner.forget_team(team)

        deps.dispatcher.spawn(work(), name=f"remove workspace {team}")

    @app.event("app_uninstalled")
    async def on_uninstalled(body: dict[str, Any], context: AsyncBoltContext) -> None:
        if uninstalled is not None:
            await uninstalled(context=context)
        await remove_workspace(body.get("team_id") or "", "app uninstalled")

    @app.event("tokens_revoked")
    async def on_tokens_revoked(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        if revoked is not None:
            await revoked(event=event, context=context)
        # A user token revoked leaves the bot working; only the bot token's loss ends the workspace.
        if (event.get("tokens") or {}).get("bot"):
            await remove_workspace(body.get("team_id") or "", "bot token revoked")
