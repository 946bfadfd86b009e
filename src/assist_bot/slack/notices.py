"""Notes to one person about their own message: the dispatcher's `Notices`.

Ephemeral (chat.postEphemeral): a refusal concerns only the message's author, and in a shared
thread a public note per refused message would add to the very flood it refuses. The note goes
where the person wrote: in the thread for a reply in a thread, in the channel (or DM) for a
message that would have started one.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from assist_bot import texts
from assist_bot.dispatch_ports import Refusal
from assist_bot.inbound import Inbound
from assist_bot.slack.clients import NotInstalled, SlackClients

log = logging.getLogger(__name__)


class SlackNotices:
    def __init__(self, clients: SlackClients) -> None:
        self._clients = clients

    async def refused(self, message: Inbound, refusal: Refusal) -> None:
        await self._tell(message, texts.message_refused(refusal.reason, refusal.limit, refusal.size))

    async def stop_refused(self, message: Inbound, askers: tuple[str, ...]) -> None:
        await self._tell(message, texts.stop_refused(askers))

    async def _tell(self, message: Inbound, text: str) -> None:
        in_thread = message.thread_ts != message.ts
        try:
            client = await self._clients.for_team(message.team)
            await client.chat_postEphemeral(
                channel=message.channel,
                user=message.user,
                text=text,
                thread_ts=message.thread_ts if in_thread else None,
            )
        except SlackApiError as exc:  # the refusal stands; only the note is lost
            log.warning(
                "could not tell %s why their message was not taken: %s", message.user, exc.response.get("error")
            )
        except NotInstalled:  # uninstalled since the message came: nobody to tell
            log.info("workspace %s is gone: no note for %s", message.team, message.user)
