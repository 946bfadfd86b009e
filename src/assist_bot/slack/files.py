"""Surface: files shared where the bot is a member.

Documents feed the channel's knowledge (file search), data files the thread's
code interpreter, images go to the model with the message they came with.
A reaction shows the work, a note in the thread tells how it went. When the
message is addressed to the bot (mention, DM, a thread it is part of), its text
becomes a turn once the files are in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.filetypes import route_for
from assist_bot.inbound import Inbound
from assist_bot.slack.downloads import download_slack_file, slack_file_hosts
from assist_bot.store import ChannelKey, ThreadKey
from assist_bot.uploads import IntakeError, Upload

log = logging.getLogger(__name__)

INTAKE_SETTING = "intake"
WORKING, DONE, FAILED = "hourglass_flowing_sand", "white_check_mark", "warning"


class FileIntake(Protocol):
    """The engine's side of intake (knowledge.Knowledge); the Slack side never sees OpenAI."""

    async def add_document(self, *, channel: ChannelKey, channel_name: str, upload: Upload) -> None: ...

    async def add_data_file(self, *, thread: ThreadKey, upload: Upload) -> None: ...

    async def add_image(self, upload: Upload, *, channel: ChannelKey) -> str: ...


@dataclass
class SlackFiles:
    """Downloads with the bot token, which goes to Slack's file hosts only."""

    client: AsyncWebClient
    token: str
    api_url: str
    max_bytes: int
    _http: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._http is None:  # made lazily, inside the running loop
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=60))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def download(self, file: dict[str, Any]) -> Upload:
        got = await download_slack_file(
            file,
            client=self.client,
            http=self.session(),
            token=self.token,
            max_bytes=self.max_bytes,
            allowed_hosts=slack_file_hosts(self.api_url),
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
    images: list[str]
    notes: list[str]


async def take_files(
    *,
    files: list[dict[str, Any]],
    thread: ThreadKey,
    intake: FileIntake,
    slack_files: SlackFiles,
    routes: dict[str, str],
    channel_name: str,
    addressed: bool,
) -> Outcome:
    """Route each file; nothing is half-stored: a failure leaves that file out entirely."""
    outcome = Outcome(images=[], notes=[])
    channel = ChannelKey(thread.team, thread.channel)
    for file in files:
        name = file.get("name") or file.get("title") or "file"
        route = route_for(name, file.get("filetype", ""), routes)
        if route is None:
            outcome.notes.append(texts.unsupported_file(name))
            continue
        if route == "image" and not addressed:
            continue  # a picture nobody asked about is none of our business
        try:
            upload = await slack_files.download(file)
            if route == "knowledge":
                await intake.add_document(channel=channel, channel_name=channel_name, upload=upload)
                outcome.notes.append(texts.added_to_knowledge(upload.name, thread.channel))
            elif route == "code":
                await intake.add_data_file(thread=thread, upload=upload)
                outcome.notes.append(texts.added_to_code(upload.name))
            else:
                outcome.images.append(await intake.add_image(upload, channel=channel))
        except IntakeError as exc:  # a download or an upload that failed, in words for users
            outcome.notes.append(texts.intake_failed(name, exc.reason))
    return outcome


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
    """Take the message's files in, tell the thread, then let a turn answer if it was for us."""
    files = [f for f in event.get("files") or [] if isinstance(f, dict)]
    await react(client, event["channel"], event["ts"], add=WORKING)
    outcome = await take_files(
        files=files,
        thread=thread,
        intake=intake,
        slack_files=slack_files,
        routes=routes,
        channel_name=channel_name,
        addressed=addressed,
    )
    failed = any(note.startswith("⚠️") for note in outcome.notes)
    await react(client, event["channel"], event["ts"], remove=WORKING, add=FAILED if failed else DONE)
    if outcome.notes:
        await client.chat_postMessage(
            channel=event["channel"], thread_ts=thread.thread_ts, text="\n".join(outcome.notes)
        )
    if addressed and ((event.get("text") or "").strip() or outcome.images):
        await submit(tuple(outcome.images))


def inbound_with_images(inbound: Inbound, images: tuple[str, ...]) -> Inbound:
    return Inbound(**{**inbound.to_dict(), "images": images})
