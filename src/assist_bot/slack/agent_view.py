"""Surface: Slack's agent view (the app's Messages tab), and the legacy assistant view.

- `app_home_opened` with tab "messages": pin the DM's assistant's suggested prompts.
- `app_context_changed`: remember which channel the person is looking at — its name and
  topic (conversations.info), its recent messages only when the assistant allows it — so
  that their next question in the DM carries it to the model (`Inbound.context`).
- `assistant_thread_started` / `assistant_thread_context_changed` (apps still on
  `assistant_view`): the same, through Bolt's AsyncAssistant.
- A DM message that starts a conversation gives it a title (assistant.threads.setTitle).

Every Slack call runs after the ack, as owned background work; the ack path only reads
and writes the store.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncAssistant
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.assistants import Assistant
from assist_bot.inbound import Inbound
from assist_bot.slack.deps import AgentViewDeps
from assist_bot.slack.normalize import valid_ids, workspace
from assist_bot.store import ChannelKey, ThreadKey

log = logging.getLogger(__name__)

# A DM channel's settings: the channel its person is looking at (written as each change
# arrives, so in Slack's order), and that channel described for the model ({"channel", "text"},
# written when the lookup returns, only if no newer change came meanwhile).
VIEWING_CHANNEL_SETTING = "viewing_channel"
VIEWING_SETTING = "viewing"
TITLE_LIMIT = 60
_CHANNEL_ENTITY = "slack#/types/channel_id"
_MESSAGE_ENTITY = "slack#/types/message_context"


async def _is_messages_tab(event: dict[str, Any]) -> bool:
    return event.get("tab") == "messages"


def register(app: AsyncApp, deps: AgentViewDeps) -> None:
    @app.event("app_home_opened", matchers=[_is_messages_tab])
    async def on_messages_tab(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        team, dm = workspace(context), event.get("channel")
        if team and dm and valid_ids(dm):
            deps.dispatcher.spawn(_offer_prompts(deps, client, team, dm), name=f"prompts {dm}")

    @app.event("app_context_changed")
    async def on_context_changed(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        team, dm = workspace(context), event.get("channel")
        if team and dm and valid_ids(dm):
            await view_changed(deps, client, team, dm, viewed_channel(event.get("context") or {}))

    app.assistant(_legacy_assistant(deps))


def _legacy_assistant(deps: AgentViewDeps) -> AsyncAssistant:
    """assistant_view apps: a thread starts (prompts for it) or its context changes."""
    assistant = AsyncAssistant(logger=logging.getLogger("assist_bot.bolt"))

    @assistant.thread_started
    async def started(payload: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        thread = payload["assistant_thread"]
        team, dm = workspace(context), thread["channel_id"]
        if not team or not valid_ids(dm):
            return
        await view_changed(deps, client, team, dm, viewed_channel(thread.get("context") or {}))
        prompts = _offer_prompts(deps, client, team, dm, thread_ts=thread["thread_ts"])
        deps.dispatcher.spawn(prompts, name=f"prompts {dm}")

    @assistant.thread_context_changed
    async def changed(payload: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        thread = payload["assistant_thread"]
        team, dm = workspace(context), thread["channel_id"]
        if not team or not valid_ids(dm):
            return
        await view_changed(deps, client, team, dm, viewed_channel(thread.get("context") or {}))

    return assistant


# -- suggested prompts ----------------------------------------------------------------
async def _assistant_of(deps: AgentViewDeps, team: str, channel: str) -> Assistant:
    settings = await deps.store.get_channel_settings(ChannelKey(team, channel))
    return deps.assistants.get(settings.get("assistant"))


async def _offer_prompts(
    deps: AgentViewDeps, client: AsyncWebClient, team: str, dm: str, *, thread_ts: str | None = None
) -> None:
    """Under agent_view the prompts sit atop the Messages tab (no thread); legacy: atop the thread."""
    assistant = await _assistant_of(deps, team, dm)
    prompts = [{"title": p.title, "message": p.message} for p in assistant.suggested_prompts]
    if not prompts:
        return
    try:
        await client.assistant_threads_setSuggestedPrompts(channel_id=dm, thread_ts=thread_ts, prompts=prompts)
    except SlackApiError as exc:
        log.info("assistant.threads.setSuggestedPrompts in %s failed: %s", dm, exc.response.get("error"))


# -- the channel being viewed -----------------------------------------------------------
def viewed_channel(context: dict[str, Any]) -> str | None:
    """The channel id in an agent-view context (entities, most relevant first) or a
    legacy assistant-thread context ({"channel_id": …}); None when there is none."""
    if context.get("channel_id"):
        return str(context["channel_id"])
    for entity in context.get("entities") or []:
        if entity.get("type") == _CHANNEL_ENTITY and entity.get("value"):
            return str(entity["value"])
        if entity.get("type") == _MESSAGE_ENTITY and isinstance(entity.get("value"), dict):
            return entity["value"].get("channel_id") or None
    return None


async def view_changed(deps: AgentViewDeps, client: AsyncWebClient, team: str, dm: str, viewed: str | None) -> None:
    """On the ack path: note the channel now in view (a store write); describe it afterwards."""
    viewed = viewed if viewed != dm else None  # looking at the bot's own DM: nothing to add
    await deps.store.set_channel_setting(ChannelKey(team, dm), VIEWING_CHANNEL_SETTING, viewed)
    deps.dispatcher.spawn(remember_view(deps, client, team, dm, viewed), name=f"context {dm}")


async def remember_view(deps: AgentViewDeps, client: AsyncWebClient, team: str, dm: str, viewed: str | None) -> None:
    """Describe the channel in view for the model — unless the person has moved on meanwhile
    (lookups can finish out of order), and never while prepare_dm would pair it with another channel."""
    key = ChannelKey(team, dm)
    text = None
    if viewed:
        assistant = await _assistant_of(deps, team, dm)
        text = await describe_channel(deps, client, team, viewed, messages=assistant.viewed_channel_messages)
    if (await deps.store.get_channel_settings(key)).get(VIEWING_CHANNEL_SETTING) != viewed:
        return
    value = json.dumps({"channel": viewed, "text": text}) if viewed and text else None
    await deps.store.set_channel_setting(key, VIEWING_SETTING, value)


async def describe_channel(
    deps: AgentViewDeps, client: AsyncWebClient, team: str, channel: str, *, messages: int
) -> str | None:
    """Name and topic (and, when allowed, recent messages) of a channel the bot can see."""
    try:
        info = (await client.conversations_info(channel=channel)).get("channel") or {}
    except SlackApiError as exc:  # a channel the bot cannot see: say nothing about it
        log.info("conversations.info for %s failed: %s", channel, exc.response.get("error"))
        return None
    if info.get("is_im") or info.get("is_mpim"):
        return None  # a DM or group DM: private to its members, so nothing is said about it
    name = info.get("name") or channel
    lines = [f"Context (not written by the person): they are looking at the Slack channel #{name}."]
    for field in ("topic", "purpose"):
        value = ((info.get(field) or {}).get("value") or "").strip()
        if value:
            lines.append(f"Its {field}: {value[:500]}")
    if messages:
        lines += await _recent_messages(deps, client, team, channel, messages)
    return "\n".join(lines)


async def _recent_messages(
    deps: AgentViewDeps, client: AsyncWebClient, team: str, channel: str, limit: int
) -> list[str]:
    try:
        history = await client.conversations_history(channel=channel, limit=limit)
    except SlackApiError as exc:
        log.info("conversations.history for %s failed: %s", channel, exc.response.get("error"))
        return []
    said = [m for m in history.get("messages") or [] if m.get("text") and not m.get("subtype")]
    lines = [f"[{await deps.people.name(team, m['user'])}] {m['text'][:1000]}" for m in reversed(said) if m.get("user")]
    return ["Its latest messages, oldest first:", *lines] if lines else []


# -- DM messages ---------------------------------------------------------------------------
async def prepare_dm(deps: AgentViewDeps, client: AsyncWebClient, event: dict[str, Any], inbound: Inbound) -> Inbound:
    """A DM question: carry what its person is looking at; title a new conversation."""
    settings = await deps.store.get_channel_settings(inbound.channel_key)
    if not event.get("thread_ts") or not await deps.store.thread_known(inbound.thread):
        title = _title(inbound.text)
        if title:
            deps.dispatcher.spawn(_set_title(client, inbound.thread, title), name=f"title {inbound.thread_ts}")
    try:
        viewing = json.loads(settings.get(VIEWING_SETTING) or "{}")
    except ValueError:
        viewing = {}
    if (
        not isinstance(viewing, dict)
        or not viewing.get("text")
        or viewing.get("channel") != settings.get(VIEWING_CHANNEL_SETTING)
    ):
        return inbound  # nothing in view, or its description is not there yet
    return dataclasses.replace(inbound, context=viewing["text"])


def _title(text: str) -> str:
    first = " ".join(text.split("\n", 1)[0].split())
    return first if len(first) <= TITLE_LIMIT else first[: TITLE_LIMIT - 1].rstrip() + "…"


async def _set_title(client: AsyncWebClient, thread: ThreadKey, title: str) -> None:
    try:
        await client.assistant_threads_setTitle(channel_id=thread.channel, thread_ts=thread.thread_ts, title=title)
    except SlackApiError as exc:
        log.info("assistant.threads.setTitle in %s failed: %s", thread.channel, exc.response.get("error"))
