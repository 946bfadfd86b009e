"""Markdown (what models write) → Slack mrkdwn, made safe, and splitting long replies.

Conversion uses the maintained `markdown-to-mrkdwn` library; this module only
adds what it does not do: neutralising model text (no pings, no disguised links)
and splitting at Slack's size limit without breaking code blocks.

Model text is not ours: whatever a model writes (or is tricked into writing by a
document it read) must show as written and do nothing. In mrkdwn `<` starts every
control sequence (`<!channel>`, `<!here>`, `<!subteam^…>`, `<@U…>`, `<url|label>`),
so `&`, `<` and `>` are escaped as Slack asks; and a Markdown link `[label](url)`
becomes `label (url)`, so its real target is what people see.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from markdown_to_mrkdwn import SlackMarkdownConverter

from assist_bot.slack.escape import escape as escape_mrkdwn  # `&`, `<`, `>` as entities

# Slack truncates message text past 40,000 characters and advises staying under
# 4,000 for readability; we stay under that, with room for a status line.
MESSAGE_LIMIT = 3500

_FENCE = "```"
_FENCE_WITH_LANGUAGE = re.compile(r"^(\s*)```[\w+#.-]+\s*$", re.MULTILINE)
_converter = SlackMarkdownConverter()


_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_QUOTE_MARK = re.compile(r"^((?:\s*&gt;)+)", re.MULTILINE)
_KEPT = "\x00"  # brackets a kept link's placeholder (no model text contains it: removed first)


def plain_links(markdown: str, kept: list[tuple[str, str]] | None = None, trusted: Collection[str] = ()) -> str:
    """`[label](url)` → `label (url)` (just `url` when the label is the URL): the target shows.
    A link to a `trusted` target (a file the bot uploaded into the thread) stays a link: it is
    replaced by a placeholder and its (url, label) appended to `kept`."""

    def plain(match: re.Match[str]) -> str:
        label, url = match.group(1).strip(), match.group(2)
        if kept is not None and url in trusted:
            kept.append((url, label or url))
            return f"{_KEPT}{len(kept) - 1}{_KEPT}"
        return url if not label or label == url else f"{label} ({url})"

    return _MD_LINK.sub(plain, markdown)


def to_mrkdwn(markdown: str, *, trusted: Collection[str] = ()) -> str:
    """Model Markdown → mrkdwn that can neither ping nor disguise a link (links to `trusted`
    targets — our own uploads — stay links, with their label escaped)."""
    if not markdown:
        return ""
    kept: list[tuple[str, str]] = []
    safe = escape_mrkdwn(plain_links(markdown.replace(_KEPT, ""), kept, trusted))
    # A `>` opening a line is a quote, not markup that could hide anything (no `<` survives).
    safe = _QUOTE_MARK.sub(lambda m: m.group(1).replace("&gt;", ">"), safe)
    text = _converter.convert(safe)
    # Slack has no syntax highlighting: "```python" would show "python" as code.
    text = _FENCE_WITH_LANGUAGE.sub(lambda m: m.group(1) + _FENCE, text)
    for index, (url, label) in enumerate(kept):
        link = f"<{escape_mrkdwn(url).replace('|', '%7C')}|{escape_mrkdwn(label)}>"
        text = text.replace(f"{_KEPT}{index}{_KEPT}", link)
    return text


def split(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut text into pieces of at most `limit` characters, at line boundaries
    where possible. A code block cut in two is closed at the end of one piece
    and reopened at the start of the next, so both render as code."""
    if len(text) <= limit:
        return [_close_open_fence(text)] if _open_fence(text) else [text]
    room = limit - len(_FENCE) - 1  # keep space to close a fence
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    in_code = False
    for line in _lines_within(text, room - len(_FENCE) - 1):
        if current and size + len(line) + 1 > room:
            chunk = "\n".join(current)
            chunks.append(chunk + "\n" + _FENCE if in_code else chunk)
            current, size = ([_FENCE], len(_FENCE) + 1) if in_code else ([], 0)
        current.append(line)
        size += len(line) + 1
        if line.strip().startswith(_FENCE):
            in_code = not in_code
    if current:
        chunk = "\n".join(current)
        chunks.append(chunk + "\n" + _FENCE if in_code else chunk)
    return chunks


def _lines_within(text: str, width: int) -> list[str]:
    """Lines, with any line longer than `width` hard-wrapped."""
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > width:
            cut = line.rfind(" ", 0, width)
            cut = cut if cut > width // 2 else width
            out.append(line[:cut])
            line = line[cut:].lstrip(" ")
        out.append(line)
    return out


def _open_fence(text: str) -> bool:
    return sum(1 for line in text.split("\n") if line.strip().startswith(_FENCE)) % 2 == 1


def _close_open_fence(text: str) -> str:
    # While a reply streams, a code block may not be closed yet.
    return text + "\n" + _FENCE


# -- native streaming: Slack renders `markdown_text` itself --------------------------------
_ZWSP = "\u200b"
_OPENERS = re.compile(r"<(?=\S)")
_LINK_JOINS = re.compile(r"\](?=[(\[:])")


def neutralise_markdown(text: str) -> str:
    """Markdown for chat.startStream/appendStream that shows as written but cannot act.

    Whether Slack's streaming markdown honours `<!here>` or `<url|label>` is not documented,
    and entities might show literally there; so instead of escaping, a zero-width space breaks
    every `<` sequence and every link join (`](`, `][`, `]:`): the text looks the same, links
    the model writes show their target, and nothing pings. The caller keeps a trailing `<` or
    `]` back until the next piece arrives (see `safe_cut`), so no sequence spans two appends.
    """
    return _LINK_JOINS.sub("]" + _ZWSP, _OPENERS.sub("<" + _ZWSP, text))


def safe_cut(text: str) -> int:
    """How much of streamed text can be neutralised and sent now: all but a trailing `<` or `]`
    whose meaning depends on the next character."""
    return len(text) - 1 if text.endswith(("<", "]")) else len(text)
