"""Surface: `/assist` — help, assistants, use, reset, status, tools.

Replies are ephemeral. Changes (use, reset, forget, intake) are for the admins in
ASSIST_BOT_ADMINS when it is set, otherwise for the workspace's admins and owners
(asked of Slack with users.info, after the ack)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from assist_bot import texts
from assist_bot.slack.deps import CommandDeps
from assist_bot.slack.files import INTAKE_SETTING
from assist_bot.slack.normalize import valid_ids, workspace
from assist_bot.store import ChannelKey

COMMAND = "/assist"

Handler = Callable[[CommandDeps, dict[str, Any], list[str]], Awaitable[str]]


WORKSPACE_ADMINS_ONLY = "Only the workspace's admins and owners can change that here."


async def _refusal(deps: CommandDeps, command: dict[str, Any]) -> str | None:
    """Why this person may not change the channel's setup, or None when they may."""
    if await may_change(deps, command):
        return None
    return texts.ADMINS_ONLY if deps.settings.admin_ids else WORKSPACE_ADMINS_ONLY


async def may_change(deps: CommandDeps, command: dict[str, Any]) -> bool:
    admins = deps.settings.admin_ids
    if admins:
        return command["user_id"] in admins
    return await deps.people.is_workspace_admin(command["team_id"], command["user_id"])


async def _help(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    return texts.ASSIST_HELP


async def _assistants(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    current = await _current_assistant(deps, command)
    lines = [
        f"• *{name}*{' (in use here)' if name == current else ''} — {deps.assistants.get(name).model}"
        f"{': ' + deps.assistants.get(name).description if deps.assistants.get(name).description else ''}"
        for name in deps.assistants.names()
    ]
    return "*Assistants*\n" + "\n".join(lines)


async def _use(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    if not args:
        return "Usage: `/assist use <assistant>` — see `/assist assistants`."
    name = args[0]
    if name not in deps.assistants:
        return f"There is no assistant called *{name}*. " + await _assistants(deps, command, [])
    if refused := await _refusal(deps, command):
        return refused
    await deps.store.set_channel_setting(_channel(command), "assistant", name)
    return f"This channel now uses the *{name}* assistant."


async def _reset(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    if refused := await _refusal(deps, command):
        return refused
    forgotten = await deps.store.delete_channel_conversations(_channel(command))
    return f"Done: I forgot {forgotten} conversation(s) in this channel. The next message starts afresh."


async def _status(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    name = await _current_assistant(deps, command)
    assistant = deps.assistants.get(name)
    tools = ", ".join(assistant.tools) or "none"
    store = "Redis" if deps.settings.redis_url else "in-process memory (lost on restart)"
    return "\n".join(
        [
            f"*Assistant:* {assistant.name} ({assistant.model})\n*Tools:* {tools}\n*State:* {store}\n"
            f"*Conversations kept:* {deps.settings.retention_days:g} days after their last message",
            *await _knowledge_elsewhere(deps, command),
        ]
    )


async def _tools(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    assistant = deps.assistants.get(await _current_assistant(deps, command))
    usable = deps.tools.for_turn(
        deps.tools.names(),
        users=[command["user_id"]],
        channel=command["channel_id"],
        team=command.get("team_id", ""),
        admins=deps.settings.admin_ids,
    )
    if not usable:
        return "No tools are available to you here."
    lines = [
        f"• `{tool.slash_command}` *{tool.name}*{' (asks first)' if tool.side_effects else ''}"
        f"{'' if tool.name in assistant.tools else ' — not offered to the model here'}: {tool.description}"
        for tool in usable
    ]
    return "*Tools*\n" + "\n".join(lines)


async def _files(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    files = await deps.knowledge.files(_channel(command))
    if not files:
        return "This channel's knowledge is empty. Share a document here to add it."
    lines = [
        f"• {'<' + rec['permalink'] + '|' + rec['name'] + '>' if rec.get('permalink') else rec['name']}"
        f" — added by <@{rec.get('uploader', '?')}>"
        for rec in sorted(files.values(), key=lambda r: r.get("name", ""))
    ]
    lines += await _knowledge_elsewhere(deps, command)
    return f"*Knowledge of <#{command['channel_id']}>* ({len(files)} file(s))\n" + "\n".join(lines)


async def _knowledge_elsewhere(deps: CommandDeps, command: dict[str, Any]) -> list[str]:
    """A line for each other model server that keeps files of the channel's knowledge (the
    channel switched to an assistant elsewhere): what to do to have them searched again."""
    away = await deps.knowledge.elsewhere(_channel(command))
    if not away:
        return []
    current = await _current_assistant(deps, command)
    names = deps.assistants.names()
    return [
        texts.knowledge_elsewhere(count, current, [n for n in names if deps.assistants.get(n).backend.server == server])
        for server, count in sorted(away.items())
    ]


async def _forget(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    if not args:
        return "Usage: `/assist forget <file name>` — see `/assist files`."
    if refused := await _refusal(deps, command):
        return refused
    name = " ".join(args)
    removed = await deps.knowledge.forget(_channel(command), name)
    return (
        f"Removed *{removed['name']}* from this channel's knowledge." if removed else f"No file called *{name}* here."
    )


async def _intake(deps: CommandDeps, command: dict[str, Any], args: list[str]) -> str:
    if not args or args[0].lower() not in ("on", "off"):
        current = (await deps.store.get_channel_settings(_channel(command))).get(INTAKE_SETTING, "on")
        return f"Automatic intake of shared files is *{current}* here. Usage: `/assist intake on|off`."
    if refused := await _refusal(deps, command):
        return refused
    value = args[0].lower()
    await deps.store.set_channel_setting(_channel(command), INTAKE_SETTING, value)
    if value == "off":
        return "Automatic intake is *off*: I only take files from messages addressed to me."
    return "Automatic intake is *on*: documents shared here feed this channel's knowledge."


SUBCOMMANDS: dict[str, Handler] = {
    "files": _files,
    "forget": _forget,
    "intake": _intake,
    "help": _help,
    "assistants": _assistants,
    "use": _use,
    "reset": _reset,
    "status": _status,
    "tools": _tools,
}


def _channel(command: dict[str, Any]) -> ChannelKey:
    return ChannelKey(command["team_id"], command["channel_id"])


async def _current_assistant(deps: CommandDeps, command: dict[str, Any]) -> str:
    settings = await deps.store.get_channel_settings(_channel(command))
    return deps.assistants.get(settings.get("assistant")).name


def register(app: AsyncApp, deps: CommandDeps, subcommands: dict[str, Handler] | None = None) -> None:
    table = {**SUBCOMMANDS, **(subcommands or {})}

    @app.command(COMMAND)
    async def on_assist(ack, command: dict[str, Any], context: AsyncBoltContext, respond) -> None:
        await ack()
        team = workspace(context)
        if team is None or not valid_ids(command.get("channel_id"), command.get("user_id")):
            return
        # The workspace is Bolt's (the installation), in the command every handler reads.
        command = {**command, "team_id": team}
        words = (command.get("text") or "").split()
        handler = table.get(words[0].lower(), _help) if words else _help  # unknown → help

        async def answer() -> None:
            await respond(response_type="ephemeral", text=await handler(deps, command, words[1:]))

        # Slack wants the ack within 3 s, and listeners run before it is sent (the events'
        # store-before-ack setting): the work is ours, after the ack.
        deps.dispatcher.spawn(answer(), name=f"{COMMAND} {words[0] if words else 'help'}")
