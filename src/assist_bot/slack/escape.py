"""Text the bot did not write itself — file names, citations, model output — is escaped before it
reaches Slack, so that it shows as written and does nothing: no `<!channel>` / `<!here>` /
`<!everyone>` / `<!subteam^…>` / `<@U…>` ping, and no `<https://evil|https://corp>` link whose
label lies about its target. In Slack's mrkdwn exactly three characters have that power, and
Slack's own answer is to escape them as HTML entities (& first, so nothing is escaped twice over).
"""

from __future__ import annotations

from collections.abc import Iterable

from assist_bot.events import Citation

_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def escape(text: str) -> str:
    """`text` as Slack should show it, never as markup."""
    return text.translate(_ENTITIES)


def link_target(url: str) -> str:
    """A URL to put inside `<url|label>`: escaped, and with no `|` that could end it early."""
    return escape(url).replace("|", "%7C")


def link(url: str, label: str) -> str:
    """`<url|label>` where neither part can break out of the link."""
    return f"<{link_target(url)}|{escape(label)}>"


def citations(cited: Iterable[Citation]) -> tuple[Citation, ...]:
    """Citations ready for a mrkdwn footnote: the file name shown as text, the link kept intact."""
    return tuple(Citation(filename=escape(c.filename), link=link_target(c.link) if c.link else "") for c in cited)
