"""Files the model made (charts, results), uploaded into the thread by a reply, whichever way
it streams; a failed upload is said in the thread, never fatal to the answer."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.events import FileOutput
from assist_bot.slack import escape
from assist_bot.slack.calls import SlackCalls


async def upload(
    client: AsyncWebClient, calls: SlackCalls, output: FileOutput, *, team: str, thread: tuple[str, str]
) -> dict[str, str]:
    """Upload a file the model made into the thread; returns {sandbox path: permalink} when the
    answer links to it. A failed upload is said in the thread."""
    channel, thread_ts = thread
    outcome = await calls.run(
        team,
        "files.upload",
        lambda: client.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            filename=output.name,
            title=escape.escape(output.name),
            content=output.content,
        ),
    )
    if not outcome.ok:
        await calls.run(
            team,
            "chat.postMessage",
            lambda: client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=texts.upload_failed(escape.escape(output.name))
            ),
            must=True,
            channel=channel,
        )
        return {}
    if not output.sandbox_path:
        return {}
    # files.completeUploadExternal answers with id and title only; files.info has the permalink.
    file_id = ((outcome.response or {}).get("file") or {}).get("id", "")
    info = await calls.run(team, "files.info", lambda: client.files_info(file=file_id))
    permalink = ((info.response or {}).get("file") or {}).get("permalink")
    return {output.sandbox_path: permalink} if permalink else {}
