"""Surface: one slash command per tool (`/weather`, `/email`, a company's own).

`/weather {"city": "Paris", "unit": "celsius"}` or `/weather city=Paris unit=celsius`
are validated against the tool's schema; `/weather what's it like in Paris` has the
model fill in the arguments; `/weather` alone opens a form generated from the
schema. Side-effect tools still ask for approval. The result is posted readably
in the channel; mistakes are explained to the user alone.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.errors import TurnError
from assist_bot.events import ApprovalRequest
from assist_bot.slack import forms
from assist_bot.slack.deps import ToolCommandDeps
from assist_bot.slack.normalize import valid_ids, workspace
from assist_bot.tools import Caller, Tool, ToolArgumentsError

log = logging.getLogger(__name__)

_PAIRS = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*=")


async def parse_arguments(deps: ToolCommandDeps, tool: Tool, text: str, *, caller: Caller) -> dict[str, Any]:
    """Text in any of the three forms → validated arguments, or ToolArgumentsError."""
    text = text.strip()
    if text.startswith("{"):
        arguments: Any = text
    elif _PAIRS.match(text):
        try:
            arguments = dict(pair.split("=", 1) for pair in shlex.split(text))
        except ValueError:
            raise ToolArgumentsError("write key=value pairs separated by spaces; quote values with spaces") from None
    else:
        arguments = await deps.tool_backend.tool_arguments(tool, text, caller=caller)
    tool.validate(arguments)
    return arguments if isinstance(arguments, dict) else json.loads(arguments)


def escaped(text: object) -> str:
    """Slack's escaping: what a tool returns (or echoes) can neither ping (<!channel>)
    nor disguise a link (<https://evil|https://corp>)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def readable(tool: Tool, user: str, output: str) -> str:
    try:
        value = json.loads(output)
    except ValueError:
        value = output
    if isinstance(value, dict):
        body = "\n".join(f"• *{escaped(key).replace('_', ' ')}*: {escaped(val)}" for key, val in value.items())
    else:
        body = escaped(value)
    return f"<@{user}> used `{tool.slash_command}`:\n{body}"


async def run_for_person(
    deps: ToolCommandDeps,
    client: AsyncWebClient,
    tool: Tool,
    arguments: dict[str, Any],
    *,
    team: str,
    channel: str,
    user: str,
) -> None:
    if tool.side_effects:
        decision = await deps.approvals.ask(
            ApprovalRequest(
                tool=tool.name,
                description=tool.description,
                arguments=tool.as_run(arguments),
                requester=user,
                requesters=(user,),
            ),
            team=team,
            channel=channel,
            thread_ts=None,
        )
        if not decision.approved:
            return  # the approval message already says who declined, or that time ran out
    ctx = deps.tool_backend.tool_context(team=team, channel=channel, user=user)
    result = await tool.invoke(arguments, ctx)
    if result.ok:
        await client.chat_postMessage(channel=channel, text=readable(tool, user, result.output))
    else:
        await client.chat_postEphemeral(
            channel=channel, user=user, text=texts.tool_failed(tool.name, escaped(result.output))
        )


def register(app: AsyncApp, deps: ToolCommandDeps) -> None:
    for tool in deps.tools.all():
        app.command(tool.slash_command)(_command_handler(deps, tool))

    @app.view(forms.CALLBACK_ID)
    async def on_form(
        ack, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        meta = _metadata(view)
        tool = deps.tools.get(str(meta.get("tool", "")))
        user, team, channel = str((body.get("user") or {}).get("id")), workspace(context), str(meta.get("channel"))
        if tool is None or team is None or not valid_ids(user, channel):
            await ack()
            return
        # Checked again on submit: the form may have been opened by someone else, or before
        # the rules changed; the view's own data is not proof of permission.
        if not tool.allowed(Caller(team=team, channel=channel, user=user), deps.settings.admin_ids):
            await ack()
            await client.chat_postEphemeral(channel=channel, user=user, text=texts.tool_not_allowed(tool.name))
            return
        try:
            arguments = forms.submitted_arguments(tool, _state_values(view))
            tool.validate(arguments)
        except (ToolArgumentsError, AttributeError, KeyError, TypeError, ValueError) as exc:
            # An empty or unexpected state is a mistake to show in the form, never a 500.
            reason = str(exc) if isinstance(exc, ToolArgumentsError) else "the form's answers could not be read"
            await ack(response_action="errors", errors=_form_errors(tool, reason))
            return
        await ack()
        deps.dispatcher.spawn(
            run_for_person(deps, client, tool, arguments, team=team, channel=channel, user=user),
            name=f"{tool.slash_command} form",
        )


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _state_values(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The view's `state.values`, keeping only blocks shaped as Slack sends them."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(values, dict):
        return {}
    return {
        block: {action: element for action, element in actions.items() if isinstance(element, dict)}
        for block, actions in values.items()
        if isinstance(actions, dict)
    }


def _form_errors(tool: Tool, message: str) -> dict[str, str]:
    """Put each problem under its field; anything else under the first field."""
    fields = list(tool.schema().get("properties", {}))
    errors: dict[str, str] = {}
    for part in message.split("; "):
        name = part.split(":", 1)[0].strip()
        target = name if name in fields else (fields[0] if fields else "")
        errors[target] = (errors.get(target, "") + " " + part).strip()[:150]
    return errors


def _command_handler(deps: ToolCommandDeps, tool: Tool):
    async def on_command(
        ack, command: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, respond
    ) -> None:
        await ack()
        team = workspace(context)
        if team is None:
            return
        # The model and an approval can take minutes: the work is ours, not Bolt's listener's.
        deps.dispatcher.spawn(_handle({**command, "team_id": team}, client, respond), name=tool.slash_command)

    async def _handle(command: dict[str, Any], client: AsyncWebClient, respond) -> None:
        user, channel, team = command["user_id"], command["channel_id"], command["team_id"]
        if not valid_ids(user, channel):
            return
        caller = Caller(team=team, channel=channel, user=user)
        if not tool.allowed(caller, deps.settings.admin_ids):
            await respond(response_type="ephemeral", text=texts.tool_not_allowed(tool.name))
            return
        text = command.get("text") or ""
        if not text.strip():
            await client.views_open(trigger_id=command["trigger_id"], view=forms.modal(tool, channel=channel))
            return
        try:
            arguments = await parse_arguments(deps, tool, text, caller=caller)
        except ToolArgumentsError as exc:
            await respond(response_type="ephemeral", text=texts.bad_arguments(tool.slash_command, escaped(exc)))
            return
        except TurnError as exc:  # the model failed, or a budget is used up (no model call then)
            await respond(response_type="ephemeral", text=texts.failure(exc.kind))
            return
        await run_for_person(deps, client, tool, arguments, team=team, channel=channel, user=user)

    return on_command
