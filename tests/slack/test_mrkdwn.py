import pytest

from assist_bot.slack.mrkdwn import neutralise_markdown, safe_cut, split, to_mrkdwn


def test_markdown_becomes_slack_mrkdwn():
    out = to_mrkdwn("# Title\n**bold** and [docs](https://example.com)\n\n- one\n- two")
    assert "*Title*" in out
    assert "*bold*" in out and "**" not in out
    assert "docs (https://example.com)" in out  # the link's real target shows
    assert "• one" in out


def test_code_fence_language_is_dropped_and_code_kept_verbatim():
    out = to_mrkdwn("```python\nx = **1**\n```")
    assert out.splitlines()[0] == "```"
    assert "x = **1**" in out


def test_short_text_is_one_piece():
    assert split("hello", 100) == ["hello"]


def test_long_text_splits_at_lines_under_the_limit():
    text = "\n".join(f"line {n} " + "x" * 40 for n in range(100))
    pieces = split(text, 500)
    assert len(pieces) > 1
    assert all(len(p) <= 500 for p in pieces)
    assert "\n".join(pieces).replace("\n", "") == text.replace("\n", "")


def test_split_never_breaks_a_code_block():
    code = "\n".join(f"print({n})" for n in range(200))
    text = "Intro\n```\n" + code + "\n```\nOutro"
    pieces = split(text, 400)
    assert len(pieces) > 2
    for piece in pieces:
        assert len(piece) <= 400
        fences = [line for line in piece.splitlines() if line.strip().startswith("```")]
        assert len(fences) % 2 == 0, piece  # every piece opens and closes its code
    body = [line for p in pieces for line in p.splitlines() if line.startswith("print(")]
    assert body == code.splitlines()


def test_a_single_huge_line_is_wrapped():
    pieces = split("word " * 2000, 300)
    assert all(len(p) <= 300 for p in pieces)
    assert sum(p.count("word") for p in pieces) == 2000


def test_unclosed_fence_while_streaming_is_closed_for_display():
    assert split("```\ncode so far", 100) == ["```\ncode so far\n```"]


@pytest.mark.parametrize(
    "hostile",
    [
        "<!channel>",
        "<!here>",
        "<!everyone>",
        "<!subteam^S123|@team>",
        "<@U123>",
        "<#C123>",
        "<https://evil|https://corp>",
    ],
)
def test_model_text_cannot_ping_or_disguise_a_link_in_mrkdwn(hostile):
    out = to_mrkdwn(f"Hello {hostile} there")
    assert "<" not in out and hostile.replace("<", "&lt;").replace(">", "&gt;") in out


def test_markdown_links_show_their_target_and_ampersands_are_escaped():
    out = to_mrkdwn("[https://corp.example](https://evil.example/?a=1&b=2) and [same](same)")
    assert out == "https://corp.example (https://evil.example/?a=1&amp;b=2) and same"
    assert "|" not in out and "<" not in out


def test_quotes_still_render_as_quotes():
    assert to_mrkdwn("> wise words").startswith(">")


@pytest.mark.parametrize(
    "hostile",
    ["<!channel>", "<!here>", "<@U123>", "<https://evil|https://corp>", "[https://corp](https://evil)", "[a][ref]"],
)
def test_streamed_markdown_is_neutralised_but_reads_the_same(hostile):
    out = neutralise_markdown(f"see {hostile}")
    assert out.replace("\u200b", "") == f"see {hostile}"
    assert "<!" not in out and "<@" not in out and "<h" not in out and "](" not in out and "][" not in out


def test_a_sequence_split_between_two_appends_is_held_back():
    text = "ping <"
    assert safe_cut(text) == len(text) - 1
    assert safe_cut("[corp]") == len("[corp]") - 1
    assert safe_cut("plain") == 5
