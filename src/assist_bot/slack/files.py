"""Surface: files shared where the bot is a member.

Documents feed the channel's knowledge (file search), data files the thread's
code interpreter, images go to the model with the message they came with.
A reaction shows the work, a note in the thread tells how it went. When the
message is addressed to the bot (mention, DM, a thread it is part of), its text
becomes a turn once the files are in.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.filetypes import Route, extension, route_for
from assist_bot.inbound import Inbound
from assist_bot.slack import file_shapes
from assist_bot.slack.addresses import FileHosts, GuardedResolver
from assist_bot.slack.downloads import download_slack_file
from assist_bot.slack.escape import escape
from assist_bot.store import ChannelKey, ThreadKey
from assist_bot.uploads import IntakeError, Upload

log = logging.getLogger(__name__)

INTAKE_SETTING = "intake"
WORKING, DONE, FAILED = "hourglass_flowing_sand", "white_check_mark", "warning"


class FileIntake(Protocol):
    """The engine's side of intake (knowledge.Knowledge); the Slack side never sees OpenAI."""

    async def add_document(self, *, channel: ChannelKey, channel_name: str, upload: Upload) -> None: ...

    async def add_data_file(self, *, thread: ThreadKey, upload: Upload) -> None: ...

    async def add_image(self, upload: Upload, *, channel: ChannelKey, thread: ThreadKey | None = None) -> str: ...


class _Pool:
    """What every workspace's downloads share: the HTTP session and the in-flight cap."""

    def __init__(self, max_concurrent: int) -> None:
        self.http: aiohttp.ClientSession | None = None
        self.slots = asyncio.Semaphore(max_concurrent)


@dataclass
class SlackFiles:
    """Downloads with the workspace's bot token (the token of `client`), which goes to Slack's
    file hosts only. `using(client)` gives the same downloader with an event's own client: with
    many workspaces, each one's files are fetched with its own token.

    At most `max_concurrent` files of this process are in flight at once (downloaded and
    handed to OpenAI), since each may hold up to `max_bytes` in memory; the others wait
    their turn, with the ⏳ reaction still on their message.
    """

    client: AsyncWebClient
    api_url: str
    max_bytes: int
    max_concurrent: int = 4
    _pool: _Pool = field(init=False)

    def __post_init__(self) -> None:
        self._pool = _Pool(self.max_concurrent)

    def using(self, client: AsyncWebClient) -> SlackFiles:
        bound = copy.copy(self)  # shares the pool
        bound.client = client
        return bound

    @property
    def token(self) -> str:
        return self.client.token or ""

    @property
    def hosts(self) -> FileHosts:
        return FileHosts.for_api(self.api_url)

    def session(self) -> aiohttp.ClientSession:
        if self._pool.http is None:  # made lazily, inside the running loop
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.hosts))
            self._pool.http = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_read=60)
            )
        return self._pool.http

    async def close(self) -> None:
        if self._pool.http is not None:
            await self._pool.http.close()

    def slot(self) -> asyncio.Semaphore:
        return self._pool.slots

    async def resolve(self, file: dict[str, Any]) -> dict[str, Any] | str:
        return await file_shapes.resolve(self.client, file)

    async def download(self, file: dict[str, Any]) -> Upload:
        got = await download_slack_file(
            file,
            client=self.client,
            http=self.session(),
            token=self.token,
            max_bytes=self.max_bytes,
            hosts=self.hosts,
        )
        return Upload(
            name=got.name,
            content=got.content,
            mimetype=got.mimetype,
            slack_file_id=file.get("id", ""),
            uploader=file.get("user", ""),
            permalink=file.get("permalink", ""),
        )


@dataclass
class Outcome:
    images: list[str] = field(default_factory=list)
    notes: dict[int, str] = field(default_factory=dict)  # by the file's place in the message
    taken: int = 0  # files that went in
    problems: int = 0  # files we told the thread we could not take

    def problem(self, index: int, note: str) -> None:
        self.notes[index] = note
        self.problems += 1

    def text(self) -> str:
        """One line per file, in the order the message carried them."""
        return "\n".join(note for _, note in sorted(self.notes.items()))


@dataclass(frozen=True)
class Step:
    index: int
    file: dict[str, Any]
    name: str
    route: Route


async def plan_files(
    files: list[dict[str, Any]], *, slack_files: SlackFiles, routes: dict[str, str], addressed: bool, outcome: Outcome
) -> list[Step]:
    """What to do with each file. Stubs are resolved (files.info) before anything is judged by
    name; files that cannot be read get their note in `outcome` and no step."""
    steps = []
    for index, raw in enumerate(files):
        file = await slack_files.resolve(raw)
        if isinstance(file, str):
            outcome.problem(index, file)
            continue
        if note := file_shapes.unreadable(file):
            outcome.problem(index, note)
            continue
        name = file_shapes.display_name(file)
        route = route_for(name, file.get("filetype", ""), routes)
        if route is None:
            kind = extension(name, file.get("filetype", ""))
            outcome.problem(index, texts.unsupported_file(escape(name), escape(kind)))
        elif route != "image" or addressed:  # a picture nobody asked about is none of our business
            steps.append(Step(index, file, name, route))
    return steps


async def take_files(
    steps: list[Step],
    *,
    thread: ThreadKey,
    intake: FileIntake,
    slack_files: SlackFiles,
    channel_name: str,
    outcome: Outcome,
) -> None:
    """Take each planned file in; nothing is half-stored: a failure leaves that file out entirely."""
    channel = ChannelKey(thread.team, thread.channel)
    for step in steps:
        try:
            async with slack_files.slot():
                upload = await slack_files.download(step.file)
                if step.route == "knowledge":
                    await intake.add_document(channel=channel, channel_name=channel_name, upload=upload)
                    outcome.notes[step.index] = texts.added_to_knowledge(escape(upload.name), thread.channel)
                elif step.route == "code":
                    await intake.add_data_file(thread=thread, upload=upload)
                    outcome.notes[step.index] = texts.added_to_code(escape(upload.name))
                else:
                    outcome.images.append(await intake.add_image(upload, channel=channel, thread=thread))
            outcome.taken += 1
        except IntakeError as exc:  # a download or an upload that failed, in words for users
            outcome.problem(step.index, texts.intake_failed(escape(step.name), exc.reason))


async def react(client: AsyncWebClient, channel: str, ts: str, *, add: str = "", remove: str = "") -> None:
    try:
        if remove:
            await client.reactions_remove(channel=channel, timestamp=ts, name=remove)
        if add:
            await client.reactions_add(channel=channel, timestamp=ts, name=add)
    except SlackApiError as exc:
        log.debug("reaction on %s failed: %s", ts, exc.response.get("error"))


async def handle_file_share(
    *,
    event: dict[str, Any],
    thread: ThreadKey,
    addressed: bool,
    client: AsyncWebClient,
    intake: FileIntake,
    slack_files: SlackFiles,
    routes: dict[str, str],
    channel_name: str,
    submit: Callable[[tuple[str, ...]], Awaitable[None]],
) -> None:
    """Take the message's files in, tell the thread, then let a turn answer if it was for us.
    ✅ only when every file the message carried for us went in; ⚠️ when any was refused."""
    files = [f for f in event.get("files") or [] if isinstance(f, dict)]
    outcome = Outcome()
    steps = await plan_files(files, slack_files=slack_files, routes=routes, addressed=addressed, outcome=outcome)
    if steps:
        await react(client, event["channel"], event["ts"], add=WORKING)
        await take_files(
            steps, thread=thread, intake=intake, slack_files=slack_files, channel_name=channel_name, outcome=outcome
        )
    final = FAILED if outcome.problems else DONE if outcome.taken else ""
    await react(client, event["channel"], event["ts"], remove=WORKING if steps else "", add=final)
    if outcome.notes:
        await client.chat_postMessage(channel=event["channel"], thread_ts=thread.thread_ts, text=outcome.text())
    if addressed and ((event.get("text") or "").strip() or outcome.images):
        await submit(tuple(outcome.images))


def inbound_with_images(inbound: Inbound, images: tuple[str, ...]) -> Inbound:
    return Inbound(**{**inbound.to_dict(), "images": images})
