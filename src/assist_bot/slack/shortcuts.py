"""Surface: message shortcuts. "Ask assist-bot about this" opens a small form for the
question; "Summarize this thread" is its quick form. Either answers in that message's
thread with the thread's text as context for the model — read (conversations.replies)
only now that the person asked, paged and capped to stay within Slack's limits.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from assist_bot.inbound import Inbound
from assist_bot.slack.deps import ShortcutDeps
from assist_bot.slack.normalize import workspace
from assist_bot.slack.people import People

log = logging.getLogger(__name__)

ASK_CALLBACK = "ask_about_message"
SUMMARIZE_CALLBACK = "summarize_thread"
ASK_VIEW = "ask_about_message_form"
QUESTION_BLOCK = "question"

SUMMARIZE_QUESTION = "Summarize this thread: the main points, what was decided, and what is still open."
PAGE_SIZE = 200  # Slack recommends no more than 200 per page
MAX_PAGES = 5  # conversations.replies is rate limited (Tier 3 at best): a long thread is cut, not waited out
MAX_CHARS = 30_000  # of thread text given to the model: the root and the latest messages
NOT_READABLE = (
    "I can't read that thread ({error}). Invite me to the channel first (`/invite @assist-bot`), then try again."
)


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """The message a shortcut was used on, and who asked (carried through the form)."""

    team: str
    channel: str
    thread_ts: str  # the thread's root: where the answer goes
    user: str
    request_ts: str  # the shortcut's action_ts: a unique id for this request
    response_url: str

    @classmethod
    def of(cls, shortcut: dict[str, Any], *, team: str) -> Target:
        message = shortcut.get("message") or {}
        return cls(
            team=team,
            channel=shortcut["channel"]["id"],
            thread_ts=message.get("thread_ts") or message.get("ts") or shortcut["message_ts"],
            user=shortcut["user"]["id"],
            request_ts=shortcut.get("action_ts") or shortcut["message_ts"],
            response_url=shortcut.get("response_url") or "",
        )


def register(app: AsyncApp, deps: ShortcutDeps) -> None:
    @app.message_shortcut(SUMMARIZE_CALLBACK)
    async def on_summarize(ack, shortcut: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        team = workspace(context)
        if team is None:
            return
        target = Target.of(shortcut, team=team)
        deps.dispatcher.spawn(answer(deps, client, target, SUMMARIZE_QUESTION), name=f"summarize {target.thread_ts}")

    @app.message_shortcut(ASK_CALLBACK)
    async def on_ask(ack, shortcut: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        team = workspace(context)
        if team is None:
            return
        form = ask_form(Target.of(shortcut, team=team))
        deps.dispatcher.spawn(_open(client, shortcut["trigger_id"], form), name="ask form")

    @app.view(ASK_VIEW)
    async def on_question(ack, view: dict[str, Any], client: AsyncWebClient) -> None:
        # An empty or unexpected state is a form error, never a KeyError (issue 9, item 5).
        state = view.get("state")
        values = state.get("values") if isinstance(state, dict) else None
        block = values.get(QUESTION_BLOCK) if isinstance(values, dict) else None
        element = block.get(QUESTION_BLOCK) if isinstance(block, dict) else None
        question = str(element.get("value") or "") if isinstance(element, dict) else ""
        if not question.strip():
            await ack(response_action="errors", errors={QUESTION_BLOCK: "Write a question."})
            return
        await ack()
        target = Target(**json.loads(view["private_metadata"]))
        deps.dispatcher.spawn(answer(deps, client, target, question.strip()), name=f"ask {target.thread_ts}")


def ask_form(target: Target) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": ASK_VIEW,
        "private_metadata": json.dumps(dataclasses.asdict(target)),
        "title": {"type": "plain_text", "text": "Ask assist-bot"},
        "submit": {"type": "plain_text", "text": "Ask"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": QUESTION_BLOCK,
                "label": {"type": "plain_text", "text": "What do you want to know about this thread?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": QUESTION_BLOCK,
                    "multiline": True,
                    "max_length": 3000,
                    "initial_value": "",
                },
            }
        ],
    }


async def _open(client: AsyncWebClient, trigger_id: str, view: dict[str, Any]) -> None:
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))


async def answer(deps: ShortcutDeps, client: AsyncWebClient, target: Target, question: str) -> None:
    """Read the thread, then ask in it like a message there would (one turn, queued per thread)."""
    try:
        text = await read_thread(client, deps.people, target.team, target.channel, target.thread_ts)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "error")
        await _tell(target, NOT_READABLE.format(error=error))
        return
    await deps.dispatcher.submit(
        Inbound(
            team=target.team,
            channel=target.channel,
            thread_ts=target.thread_ts,
            ts=target.request_ts,
            user=target.user,
            user_name=await deps.people.name(target.team, target.user),
            text=question,
            is_dm=target.channel.startswith("D"),
            context=text,
        )
    )


async def _tell(target: Target, text: str) -> None:
    """Only to the person who asked (the shortcut's response_url: works where the bot is not a member)."""
    if not target.response_url:
        return
    response = await AsyncWebhookClient(target.response_url).send(text=text, response_type="ephemeral")
    if response.status_code != 200:
        log.warning("response_url answered %s", response.status_code)


async def read_thread(client: AsyncWebClient, people: People, team: str, channel: str, thread_ts: str) -> str:
    """The thread as "[name] text" lines for the model: root first, then the latest replies
    that fit MAX_CHARS. Raises SlackApiError when the first page cannot be read."""
    messages: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    for page in range(MAX_PAGES):
        try:
            response = await client.conversations_replies(channel=channel, ts=thread_ts, limit=PAGE_SIZE, cursor=cursor)
        except SlackApiError:
            if page == 0:
                raise
            log.info("conversations.replies stopped after %d page(s); answering with what was read", page)
            break
        for message in response.get("messages") or []:
            messages.setdefault(message["ts"], message)  # later pages may repeat the root
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not (response.get("has_more") and cursor):
            break
    ordered = sorted(messages.values(), key=lambda m: float(m["ts"]))
    lines = [f"[{await _speaker(people, team, m)}] {m.get('text') or _attachments(m)}" for m in ordered]
    return _frame(channel, _fit(lines))


async def _speaker(people: People, team: str, message: dict[str, Any]) -> str:
    if message.get("bot_id") or not message.get("user"):
        return str((message.get("bot_profile") or {}).get("name") or message.get("username") or "a bot")
    return await people.name(team, message["user"])


def _attachments(message: dict[str, Any]) -> str:
    names = [f.get("name") or "a file" for f in message.get("files") or []]
    return f"(shared {', '.join(names)})" if names else "(no text)"


def _fit(lines: list[str]) -> list[str]:
    """Keep the root and as many of the latest lines as fit; say how many were left out."""
    if sum(len(line) + 1 for line in lines) <= MAX_CHARS:
        return lines
    root, rest = lines[0][: MAX_CHARS // 4], lines[1:]
    kept: list[str] = []
    budget = MAX_CHARS - len(root)
    for line in reversed(rest):
        if len(line) + 1 > budget:
            break
        kept.append(line)
        budget -= len(line) + 1
    skipped = len(rest) - len(kept)
    return [root, f"(… {skipped} earlier repl{'y' if skipped == 1 else 'ies'} left out …)", *reversed(kept)]


def _frame(channel: str, lines: list[str]) -> str:
    return (
        f"Context (not written by the person asking): the Slack thread they asked about, in <#{channel}>, "
        f"oldest first, each line starting with its author's name:\n" + "\n".join(lines)
    )
