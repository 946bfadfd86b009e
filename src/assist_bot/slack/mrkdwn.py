"""Markdown (what models write) → Slack mrkdwn, and splitting long replies.

Conversion uses the maintained `markdown-to-mrkdwn` library; this module only
adds what it does not do: splitting at Slack's size limit without breaking
code blocks.
"""

from __future__ import annotations

import re

from markdown_to_mrkdwn import SlackMarkdownConverter

# Slack truncates message text past 40,000 characters and advises staying under
# 4,000 for readability; we stay under that, with room for a status line.
MESSAGE_LIMIT = 3500

_FENCE = "```"
_FENCE_WITH_LANGUAGE = re.compile(r"^(\s*)```[\w+#.-]+\s*$", re.MULTILINE)
_converter = SlackMarkdownConverter()


def to_mrkdwn(markdown: str) -> str:
    if not markdown:
        return ""
    text = _converter.convert(markdown)
    # Slack has no syntax highlighting: "```python" would show "python" as code.
    return _FENCE_WITH_LANGUAGE.sub(lambda m: m.group(1) + _FENCE, text)


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
