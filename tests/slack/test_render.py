"""slack/render.py: footnotes, sandbox links and unfinished markdown, as pure functions."""

from __future__ import annotations

import pytest

from assist_bot.events import Citation
from assist_bot.slack.mrkdwn import to_mrkdwn
from assist_bot.slack.render import close_unfinished, footnotes, for_display, link_sandbox

# Deltas of the recorded web-search answer (tests/fakes/openai_payloads/streams/pai-web-search-url-citation.sse).
RECORDED = [
    "The tallest mountain in Alberta is **",
    "Mount Columbia** (3,747 m",
    " / 12,294 ft). ",
    "([britannica.com](https://www.britannica.com/place/Mount-Columbia?utm_source=openai))",
]


@pytest.mark.parametrize(
    ("partial", "shown"),
    [
        ("The tallest mountain in Alberta is **", "The tallest mountain in Alberta is "),
        ("is **Mount Col", "is **Mount Col**"),
        ("is **Mount Columbia** (3,747 m", "is **Mount Columbia** (3,747 m"),
        ("run `pip inst", "run `pip inst`"),
        ("see ([britannica.com](https://www.brit", "see (britannica.com"),
        ("see [the docs", "see the docs"),
        ("~~old", "~~old~~"),
        ("a list:\n* ", "a list:\n"),
        ("Code:\n```python\nprint(1)", "Code:\n```python\nprint(1)\n```"),
        ("Code:\n``", "Code:\n"),
        ("Done.\n\n**Note", "Done.\n\n**Note**"),
        ("`a ** b` is fine", "`a ** b` is fine"),
        ("**bold** and done", "**bold** and done"),
    ],
)
def test_unfinished_markdown_is_closed_or_held_back(partial, shown):
    assert close_unfinished(partial) == shown


def test_no_intermediate_render_of_a_recorded_stream_shows_raw_markers():
    text = ""
    for delta in RECORDED:
        text += delta
        rendered = to_mrkdwn(close_unfinished(text))
        assert "**" not in rendered, rendered
        assert "](" not in rendered, rendered


def test_a_finished_answer_is_left_alone():
    assert for_display("**Bold** [x](https://e.com)", links={}, streaming=False) == "**Bold** [x](https://e.com)"


def test_sandbox_links_point_at_the_uploaded_file():
    text = "Download the image: [Download the chart](sandbox:/mnt/data/y_eq_x_squared_plot.png)"
    permalink = "https://acme.slack.com/files/UBOT/F1/y_eq_x_squared_plot.png"
    linked = link_sandbox(text, {"sandbox:/mnt/data/y_eq_x_squared_plot.png": permalink})
    assert linked == f"Download the image: [Download the chart]({permalink})"
    # Not uploaded (yet, or it failed): the words stay, the dead sandbox: link goes.
    assert link_sandbox(text, {}) == "Download the image: Download the chart"
    assert link_sandbox("saved to sandbox:/mnt/data/out.csv.", {}) == "saved to out.csv."


def test_footnotes_for_files_and_web_pages():
    cited = [
        Citation("handbook.pdf", "https://acme.slack.com/files/U1/F1/handbook.pdf"),
        Citation("Mount Columbia | mountain <b>", "https://www.britannica.com/place/Mount-Columbia", kind="web"),
        Citation("notes.txt"),
        Citation("evil", "javascript:alert(1)", kind="web"),
    ]
    assert footnotes(cited).split("\n") == [
        "*Sources*",
        "[1] <https://acme.slack.com/files/U1/F1/handbook.pdf|handbook.pdf>",
        # A title shows as text: it cannot end the link early or add markup (slack/escape.py).
        "[2] <https://www.britannica.com/place/Mount-Columbia|Mount Columbia | mountain &lt;b&gt;>",
        "[3] notes.txt",
        "[4] evil",  # only web links are linked
    ]
    assert footnotes([]) == ""
