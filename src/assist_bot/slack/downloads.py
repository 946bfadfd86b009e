"""Download a file a user shared in Slack, without leaking the token or the memory.

Why this is more than `session.get(url)`:
- The bot token opens every file the bot can see, so it is sent only to Slack's own origins
  (scheme, host and port: `addresses.FileHosts`). Redirects are followed by hand because an HTTP
  client that follows them itself may replay the Authorization header to wherever they point.
- A file's declared size can be wrong and a body can be endless, so the body is streamed and
  the connection dropped as soon as it passes the cap.
- Slack answers a missing scope or a channel the bot is not in with an HTML login page
  (sometimes with status 200); that page must not be handed on as the user's PDF.

Policy: the first URL must be one of Slack's own (a file object whose `url_private` points
anywhere else is not fetched at all: it would put a stranger's page into the knowledge). A
redirect to another host is followed WITHOUT the token (Slack may send downloads to a CDN with a
signed URL), but never to an internal address, however spelled or resolved (`addresses.py`).

The caller's `http` session must not carry a default Authorization header of its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from yarl import URL

from assist_bot.slack import file_shapes
from assist_bot.slack.addresses import FileHosts
from assist_bot.slack.escape import escape
from assist_bot.uploads import IntakeError

log = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
# Slack's own words for files it will not serve, by the file object's `mode`.
_MODES = {"tombstone": "was deleted", "hidden_by_limit": "is hidden by the workspace's plan limits"}


class DownloadError(IntakeError):
    """A shared file could not be fetched; `reason` is a sentence a user can read."""

    def __init__(self, reason: str, *, name: str = "") -> None:
        super().__init__(reason)
        self.name = name


@dataclass(frozen=True, slots=True)
class Downloaded:
    name: str
    mimetype: str
    filetype: str
    content: bytes
    size: int


async def download_slack_file(
    file: dict[str, Any],
    *,
    client: AsyncWebClient,
    http: aiohttp.ClientSession,
    token: str,
    max_bytes: int,
    hosts: FileHosts,
    time_limit: float = 120.0,
) -> Downloaded:
    """Fetch one Slack file object's bytes (at most `max_bytes`), or raise DownloadError."""
    resolved = await file_shapes.resolve(client, file)  # a Slack Connect stub: files.info has the rest
    if isinstance(resolved, str):
        raise DownloadError(_no_access("this file"))
    file = resolved
    name = file.get("name") or file.get("title") or "the file"
    label = f"“{escape(name)}”"  # reasons are posted to Slack: a name must not ping or fake a link
    _check_declared(file, label, name, max_bytes)
    url = file.get("url_private_download") or file.get("url_private")
    if not url:
        raise DownloadError(f"Slack gave me no download link for {label}.", name=name)
    if not hosts.may_carry_token(URL(url)):
        log.warning("file %s links outside Slack (%s): not fetched", file.get("id"), URL(url).host)
        raise DownloadError(f"The download link for {label} is not a secure Slack link.", name=name)
    try:
        async with asyncio.timeout(time_limit):
            content, content_type = await _fetch(
                URL(url),
                http=http,
                token=token,
                max_bytes=max_bytes,
                hosts=hosts,
                label=label,
                name=name,
            )
    except TimeoutError:
        raise DownloadError(f"Downloading {label} from Slack took too long.", name=name) from None
    except aiohttp.ClientError as exc:
        log.warning("download of %s failed: %s", file.get("id"), type(exc).__name__)
        raise DownloadError(f"I could not reach Slack to download {label}.", name=name) from None
    if not content:
        raise DownloadError(f"{label} is empty.", name=name)
    if _is_html(content_type, content) and not _file_is_html(file):
        raise DownloadError(_no_access(label), name=name)
    mimetype = file.get("mimetype") or content_type or "application/octet-stream"
    return Downloaded(name, mimetype, file.get("filetype") or "", content, len(content))


def _check_declared(file: dict[str, Any], label: str, name: str, max_bytes: int) -> None:
    """Refuse before any byte moves when Slack already tells us the file is unusable."""
    if file.get("mode") in _MODES:
        raise DownloadError(f"{label} {_MODES[file['mode']]}.", name=name)
    size = file.get("size")
    if isinstance(size, int) and size > max_bytes:
        raise DownloadError(f"{label} is {_human(size)}; the limit is {_human(max_bytes)}.", name=name)
    if size == 0:
        raise DownloadError(f"{label} is empty.", name=name)


async def _fetch(
    url: URL,
    *,
    http: aiohttp.ClientSession,
    token: str,
    max_bytes: int,
    hosts: FileHosts,
    label: str,
    name: str,
) -> tuple[bytes, str]:
    """GET with hand-followed redirects; returns the capped body and its content type."""
    for _ in range(_MAX_REDIRECTS + 1):
        await _check_hop(url, hosts, label, name)
        headers = {"Authorization": f"Bearer {token}"} if hosts.may_carry_token(url) else {}
        async with http.get(url, headers=headers, allow_redirects=False) as resp:
            if resp.status in _REDIRECTS and resp.headers.get("Location"):
                url = resp.url.join(URL(resp.headers["Location"]))
                continue
            if resp.status in (401, 403, 404):
                raise DownloadError(_no_access(label), name=name)
            if resp.status != 200:
                raise DownloadError(
                    f"Slack answered with an error ({resp.status}) when I downloaded {label}.", name=name
                )
            return await _read_capped(resp, max_bytes, label, name), resp.content_type
    raise DownloadError(f"Slack redirected the download of {label} too many times.", name=name)


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int, label: str, name: str) -> bytes:
    body = bytearray()
    if resp.content_length is None or resp.content_length <= max_bytes:
        async for chunk in resp.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > max_bytes:
                break
        else:
            return bytes(body)
    # close(), not release(): the rest of the body must not be drained just to reuse the connection.
    resp.close()
    raise DownloadError(f"{label} is larger than the {_human(max_bytes)} limit.", name=name)


async def _check_hop(url: URL, hosts: FileHosts, label: str, name: str) -> None:
    if not hosts.secure(url):
        raise DownloadError(f"The download link for {label} is not a secure Slack link.", name=name)
    try:
        internal = await hosts.reaches_internal(url)
    except OSError:  # the name does not resolve: nothing to fetch, and nothing we could vouch for
        raise DownloadError(f"I could not reach Slack to download {label}.", name=name) from None
    if internal:
        log.warning("refused to fetch %s: an internal address", url.host)
        raise DownloadError(f"Slack sent the download of {label} somewhere I won't go.", name=name)


def _is_html(content_type: str, content: bytes) -> bool:
    head = content[:256].lstrip().lower()
    return content_type == "text/html" or head.startswith((b"<!doctype html", b"<html"))


def _file_is_html(file: dict[str, Any]) -> bool:
    return file.get("filetype") == "html" or file.get("mimetype") == "text/html"


def _no_access(label: str) -> str:
    return f"Slack did not let me read {label} (is the bot in the channel?)."


def _human(n: int) -> str:
    """Sizes as people read them; 1 MB here is 1024 × 1024 bytes, as Slack's own limits are."""
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"
