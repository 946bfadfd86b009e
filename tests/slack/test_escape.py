"""Escaping for Slack: whatever a name or a model says, it shows as text, pings nobody and links nowhere."""

from __future__ import annotations

import pytest

from assist_bot import texts
from assist_bot.events import Citation
from assist_bot.slack.escape import citations, escape, link, link_target


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<!here> <!everyone>", "&lt;!here&gt; &lt;!everyone&gt;"),
        ("<!subteam^S123|@admins>", "&lt;!subteam^S123|@admins&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<https://evil.example|https://corp.example>", "&lt;https://evil.example|https://corp.example&gt;"),
        ("R&D <notes>.pdf", "R&amp;D &lt;notes&gt;.pdf"),
        ("&lt;already&gt;", "&amp;lt;already&amp;gt;"),  # shown exactly as written, not unescaped by Slack
        ("plain name.pdf", "plain name.pdf"),
    ],
)
def test_escape(raw, shown):
    assert escape(raw) == shown


def test_escaped_text_has_no_markup_left():
    hostile = "<!channel> <@U1> <#C1> <https://a|b> & more"
    assert not set("<>") & set(escape(hostile))


def test_a_link_cannot_be_broken_out_of():
    assert link("https://x.example/a|b>c", "<!here>") == "<https://x.example/a%7Cb&gt;c|&lt;!here&gt;>"
    assert (
        link_target("https://files.slack.com/files/U1/F1/a&b.pdf") == "https://files.slack.com/files/U1/F1/a&amp;b.pdf"
    )


def test_citation_footnotes_show_file_names_as_text():
    cited = citations(
        [
            Citation("<!channel>.pdf", "https://fake.slack.com/files/U1/F1/x.pdf"),
            Citation("<https://evil|https://corp>"),
        ]
    )
    assert texts.sources(cited) == (
        "*Sources*\n[1] <https://fake.slack.com/files/U1/F1/x.pdf|&lt;!channel&gt;.pdf>\n"
        "[2] &lt;https://evil|https://corp&gt;"
    )
