"""Pure text work between the model's Markdown and what a Slack message shows: footnotes
for cited sources, links to files the code interpreter wrote (`sandbox:` paths → the file
uploaded into the thread), and unfinished Markdown hidden while an answer streams.

No I/O here: the reply sink calls these on every render."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from assist_bot import texts
from assist_bot.events import Citation
from assist_bot.slack import escape

_FENCE = "```"
# `[text](sandbox:/mnt/data/x.png)`, `![alt](sandbox:…)`, and bare `sandbox:/mnt/data/x.png`.
_SANDBOX_LINK = re.compile(r"!?\[([^\[\]\n]*)\]\((sandbox:[^()\s]+)\)")
_SANDBOX_BARE = re.compile(r"sandbox:/mnt/data/[^\s()<>\[\]]+")
# A link still being written at the very end: `[text`, `[text]`, `[text](http…` (no closing paren).
_OPEN_LINK = re.compile(r"!?\[([^\[\]\n]*)(?:\](?:\([^()\s]*)?)?$")
_PAIRED = ("**", "__", "~~")
# Marker characters dangling at the end, after a space or at a line start: the start of
# emphasis or code whose text has not arrived yet.
_DANGLING = re.compile(r"(^|(?<=\s))[*_~`]+[ \t]*$")


# -- footnotes ---------------------------------------------------------------------------
def footnotes(citations: Iterable[Citation]) -> str:
    """Numbered sources under an answer: knowledge files and web pages, as Slack links whose
    labels show as text (escape.py); only web links (http, https) are linked."""
    linkable = [
        Citation(c.filename, c.link if c.link.startswith(("https://", "http://")) else "", c.kind) for c in citations
    ]
    return texts.sources(escape.citations(linkable))


# -- sandbox links -------------------------------------------------------------------------
def link_sandbox(markdown: str, links: Mapping[str, str]) -> str:
    """Point `sandbox:/mnt/data/…` links at the files uploaded into the thread (`links`:
    sandbox path → Slack permalink). A link to a file not uploaded (yet) keeps only its text:
    a `sandbox:` URL leads nowhere in Slack."""

    def linked(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        permalink = links.get(target)
        return f"[{label or target.rsplit('/', 1)[-1]}]({permalink})" if permalink else label

    text = _SANDBOX_LINK.sub(linked, markdown)
    return _SANDBOX_BARE.sub(lambda m: links.get(m.group(0)) or m.group(0).rsplit("/", 1)[-1], text)


# -- unfinished markdown ------------------------------------------------------------------
def close_unfinished(markdown: str) -> str:
    """What may be shown of an answer still being written: an open code block is closed,
    and emphasis, inline code or a link cut off mid-way are closed or held back, so that
    no raw `**`, backtick or `](http…` flashes up between two edits."""
    if not markdown:
        return markdown
    lines = markdown.split("\n")
    if sum(1 for line in lines if line.strip().startswith(_FENCE)) % 2:
        if lines[-1].strip() in ("`", "``", _FENCE):
            lines[-1] = ""  # a fence being typed: nothing to show yet
        return "\n".join(lines).rstrip("\n") + "\n" + _FENCE
    head, sep, tail = markdown.rpartition("\n\n")  # inline markup does not cross paragraphs
    if tail.lstrip().startswith(_FENCE):
        return markdown
    return head + sep + _close_inline(tail)


def _close_inline(paragraph: str) -> str:
    if paragraph.strip().startswith("`") and paragraph.strip().strip("`") == "":
        return ""  # only backticks so far: perhaps a code fence arriving
    text = _DANGLING.sub("", paragraph)
    text = _OPEN_LINK.sub(lambda m: m.group(1), text)
    if text.count("`") % 2:
        text = text.rstrip() + "`"
    outside = re.sub(r"`[^`]*`", "", text)  # markers inside inline code are literal
    for marker in _PAIRED:
        if outside.count(marker) % 2:
            last = text.rfind(marker)
            text = text[:last] + text[last + 2 :] if not text[last + 2 :].strip() else text.rstrip() + marker
    return text


def for_display(markdown: str, *, links: Mapping[str, str], streaming: bool) -> str:
    """The answer as one render shows it."""
    text = link_sandbox(markdown, links) if "sandbox:" in markdown else markdown
    return close_unfinished(text) if streaming else text
