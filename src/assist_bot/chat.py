"""`assist-bot chat`: a conversation in the terminal with the same engine, assistants
file, tools and store the Slack bot uses — to try an assistant or a new tool before
touching Slack, or to see the bot work with nothing but OPENAI_API_KEY.

The terminal is one more surface: messages go through the dispatcher (queue, lock,
conversation mapping in the store) to the engine, and its events come back to
`terminal.TerminalReplies` instead of a Slack reply. The person at the terminal runs the
bot with its keys, so they count as an admin (every tool they are offered)."""

from __future__ import annotations

import asyncio
import getpass
import itertools
import logging
import time

from assist_bot.assistants import Assistants
from assist_bot.dispatch import Dispatcher
from assist_bot.engine.backends import Backends, default_client
from assist_bot.engine.knowledge import Knowledge
from assist_bot.engine.turns import Engine
from assist_bot.errors import SettingsError
from assist_bot.inbound import Inbound
from assist_bot.settings import Settings
from assist_bot.store import open_store
from assist_bot.terminal import Terminal, TerminalReplies
from assist_bot.tools.loading import load_registry

log = logging.getLogger(__name__)

# Ids of terminal conversations, shaped like Slack's (the store's keys take only those) but longer
# than any Slack issues, so they never meet a real workspace's keys.
TEAM, CHANNEL, USER = "TTERMINALCHAT00", "DTERMINALCHAT00", "UTERMINALCHAT00"
QUIT = ("/quit", "/exit")


def pick(settings: Settings, name: str | None) -> Assistants:
    """A catalogue of just the chosen assistant (the file's default when none is named)."""
    assistants = Assistants.load(settings.assistants_file, model=settings.model)
    if name is not None and name not in assistants:
        raise SettingsError(f"no assistant named {name!r}: the assistants are {', '.join(assistants.names())}")
    chosen = assistants.get(name)
    return Assistants({chosen.name: chosen}, chosen.name)


async def chat(settings: Settings, *, assistant: str | None = None, terminal: Terminal | None = None) -> int:
    settings = settings.model_copy(update={"admins": f"{settings.admins},{USER}"})
    assistants = pick(settings, assistant)
    chosen = assistants.default
    store = open_store(
        redis_url=settings.redis_url,
        retention_seconds=settings.retention_seconds,
        redis_max_connections=settings.redis_max_connections,
    )
    client = default_client(settings)
    # The assistant's own model server, if the assistants file gives it one (as in Slack).
    backends = Backends(settings=settings, assistants=assistants, default_client=client)
    knowledge = Knowledge(backends=backends, store=store, settings=settings)
    engine = Engine(
        store=store,
        settings=settings,
        tools=load_registry(settings),
        knowledge=knowledge,
        backends=backends,
    )
    terminal = terminal or Terminal()
    replies = TerminalReplies(terminal, name=chosen.name, approval_timeout=settings.approval_timeout)
    dispatcher = Dispatcher(store=store, engine=engine, replies=replies, assistants=assistants, max_concurrent_turns=1)
    try:
        await backends.resolve()
        await terminal.open()
        terminal.write(f"assist-bot chat with {chosen.name} ({chosen.model}). /quit or Ctrl-D to leave.\n")
        await _converse(terminal, dispatcher, replies)
    finally:
        await dispatcher.shutdown(settings.shutdown_grace)
        await store.close()
        await engine.close()
        await backends.close()
        await client.close()
        terminal.close()
    return 0


async def _converse(terminal: Terminal, dispatcher: Dispatcher, replies: TerminalReplies) -> None:
    thread_ts = f"{time.time():.6f}"  # one conversation per chat session
    user_name = _user_name()
    for n in itertools.count(1):
        text = await terminal.read_line("you> ")
        if text is None or text.strip() in QUIT:
            terminal.write("\n" if text is None else "")
            return
        if not text.strip():
            continue
        message = Inbound(
            team=TEAM,
            channel=CHANNEL,
            thread_ts=thread_ts,
            ts=f"{thread_ts}.{n}",
            user=USER,
            user_name=user_name,
            text=text,
            is_dm=True,
        )
        replies.turn_over.clear()
        if await dispatcher.submit(message):
            await _turn_over(dispatcher, replies)


async def _turn_over(dispatcher: Dispatcher, replies: TerminalReplies) -> None:
    """Until the answer has ended — or its thread's work stopped without one (logged)."""
    while True:
        try:
            await asyncio.wait_for(replies.turn_over.wait(), 0.25)
            return
        except TimeoutError:
            if not dispatcher.in_flight and not replies.turn_over.is_set():
                return


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's bare uid)
        return "you"
