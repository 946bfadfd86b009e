"""Slack's file objects as they really arrive, before anything is routed by name.

- A Slack Connect file (and some others) comes as a stub: `file_access: "check_file_info"`,
  no name, no URLs. Only `files.info` tells what it is, so it is asked first.
- A file on a plan over its limit comes as `{"id", "mode": "hidden_by_limit"}`; a deleted one
  as `{"id", "mode": "tombstone"}`: neither has anything to read.
- A Google Drive / Dropbox / … file is `is_external`: a link to another service, whose
  `url_private` is not Slack's and is never fetched.
Each gets a note of its own, in words for the people in the thread.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.slack.escape import escape

log = logging.getLogger(__name__)

EXTERNAL_SERVICES = {
    "gdrive": "Google Drive",
    "dropbox": "Dropbox",
    "box": "Box",
    "onedrive": "OneDrive",
    "sharepoint": "SharePoint",
    "zoho": "Zoho",
}
NO_ACCESS = "⚠️ Slack did not let me read a file shared here (is the bot in the channel?)."
UNREACHABLE = "⚠️ I could not reach Slack to read a file shared here. Please share it again."
TOMBSTONE = "⚠️ A file shared here was deleted before I could read it."
HIDDEN_BY_LIMIT = "⚠️ Slack hides a file shared here because of the workspace's plan limits, so I can't read it."


async def resolve(client: AsyncWebClient, file: dict[str, Any]) -> dict[str, Any] | str:
    """The full file object (asking files.info for a stub), or a note saying why there is none."""
    if file.get("file_access") != "check_file_info":
        return file
    try:
        response = await client.files_info(file=file["id"])
    except SlackApiError as exc:
        log.info("files.info %s: %s", file.get("id"), exc.response.get("error"))
        return NO_ACCESS
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("files.info %s failed: %s", file.get("id"), type(exc).__name__)
        return UNREACHABLE
    full = response.get("file")
    if not isinstance(full, dict) or full.get("file_access") in ("check_file_info", "access_denied"):
        return NO_ACCESS
    return full


def display_name(file: dict[str, Any]) -> str:
    return file.get("name") or file.get("title") or "file"


def unreadable(file: dict[str, Any]) -> str | None:
    """A note when Slack's file object itself says there is nothing we can read; else None."""
    mode = file.get("mode")
    if file.get("file_access") == "access_denied":
        return NO_ACCESS
    if mode == "tombstone":
        return TOMBSTONE
    if mode == "hidden_by_limit":
        return HIDDEN_BY_LIMIT
    if file.get("is_external") or mode == "external":
        service = EXTERNAL_SERVICES.get(file.get("external_type") or "", "another service")
        return (
            f"🔗 *{escape(display_name(file))}* is a link to {service}, not a file stored in Slack, "
            "so I can't read it. Download it and share the file itself to add it."
        )
    return None
