"""File intake over the real wire for the shapes Slack really sends (Slack Connect stubs, plan-limited,
deleted and external files), hostile file names, files in two channels, OpenAI's own error text, and the
per-process cap on downloads."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.slack import file_deleted, wait_for
from tests.files.shapes import DROPBOX_PDF, GOOGLE_DOC, HIDDEN_BY_LIMIT, SLACK_CONNECT_STUB, TOMBSTONE
from tests.support.answers import answer_citing_a_file_it_made
from tests.support.bot import running_bot
from tests.support.flows import reactions_on, reply_containing, reply_texts, share_files

pytestmark = pytest.mark.timeout(60)

MD = b"# Handbook\n25 days of leave.\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


# -- every real file shape -----------------------------------------------------------------------------
async def test_a_slack_connect_stub_is_resolved_with_files_info_before_routing(slack, openai_fake):
    stub = slack.add_file(
        name="handbook.md", content=MD, mimetype="text/markdown", filetype="markdown", file_access="check_file_info"
    )
    assert set(stub) == set(SLACK_CONNECT_STUB)  # the recorded shape: no name, no URLs
    async with running_bot(slack, openai_fake) as bot:
        event = await share_files(bot, "C1", [stub])
        await wait_for(lambda: reply_texts(slack, "C1", event["ts"]))
    assert reply_texts(slack, "C1", event["ts"]) == ["📚 Added *handbook.md* to <#C1>'s knowledge."]
    assert [c.args["file"] for c in slack.calls_to("files.info")] == [stub["id"]]
    assert reactions_on(slack, event["ts"])[-1] == ("reactions.add", "white_check_mark")
    [stored] = openai_fake.files.values()
    assert (stored["filename"], stored["content"]) == ("handbook.md", MD)


async def test_a_stub_files_info_will_not_resolve_gets_a_clear_note(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        event = await share_files(bot, "C1", [SLACK_CONNECT_STUB])  # files.info: file_not_found
        await wait_for(lambda: reply_texts(slack, "C1", event["ts"]))
    assert reply_texts(slack, "C1", event["ts"]) == [
        "⚠️ Slack did not let me read a file shared here (is the bot in the channel?)."
    ]
    assert ("reactions.add", "white_check_mark") not in reactions_on(slack, event["ts"])


@pytest.mark.parametrize(
    ("shape", "note"),
    [
        (TOMBSTONE, "⚠️ A file shared here was deleted before I could read it."),
        (
            HIDDEN_BY_LIMIT,
            "⚠️ Slack hides a file shared here because of the workspace's plan limits, so I can't read it.",
        ),
        (
            GOOGLE_DOC,
            "🔗 *Roadmap* is a link to Google Drive, not a file stored in Slack, so I can't read it. "
            "Download it and share the file itself to add it.",
        ),
        (
            DROPBOX_PDF,
            "🔗 *contract.pdf* is a link to Dropbox, not a file stored in Slack, so I can't read it. "
            "Download it and share the file itself to add it.",
        ),
        (  # constructed: what Slack Connect sends when the other org does not share the file with us
            {"id": "F0DENIED", "mode": "file_access", "file_access": "access_denied"},
            "⚠️ Slack did not let me read a file shared here (is the bot in the channel?).",
        ),
    ],
    ids=["tombstone", "hidden_by_limit", "gdrive", "dropbox", "access_denied"],
)
async def test_unreadable_shapes_get_their_own_note_and_no_check_mark(slack, openai_fake, shape, note):
    async with running_bot(slack, openai_fake) as bot:
        event = await share_files(bot, "C1", [dict(shape)])
        await wait_for(lambda: reply_texts(slack, "C1", event["ts"]))
    assert reply_texts(slack, "C1", event["ts"]) == [note]
    assert reactions_on(slack, event["ts"]) == [("reactions.add", "warning")]  # no ⏳: there was nothing to do
    assert slack.calls_to("files.info") == [] and slack.download_tokens == [] and openai_fake.files == {}


async def test_a_check_mark_is_never_added_for_a_skipped_file(slack, openai_fake):
    """A picture nobody asked about is skipped silently; a readable file beside a deleted one is not ✅."""
    async with running_bot(slack, openai_fake) as bot:
        picture = slack.add_file(name="cat.png", content=PNG, mimetype="image/png", filetype="png", channel="C1")
        lone = await share_files(bot, "C1", [picture])
        doc = slack.add_file(name="a.md", content=MD, mimetype="text/markdown", filetype="markdown", channel="C1")
        mixed = await share_files(bot, "C1", [doc, dict(TOMBSTONE)])
        await wait_for(lambda: reply_texts(slack, "C1", mixed["ts"]))
        await bot.settled()
    assert reactions_on(slack, lone["ts"]) == [] and reply_texts(slack, "C1", lone["ts"]) == []
    assert reactions_on(slack, mixed["ts"])[-1] == ("reactions.add", "warning")
    assert ("reactions.add", "white_check_mark") not in reactions_on(slack, mixed["ts"])
    assert len(reply_texts(slack, "C1", mixed["ts"])[0].splitlines()) == 2  # one line per file


# -- names that try to ping or disguise a link -------------------------------------------------------------
async def test_hostile_file_names_are_shown_as_text(slack, openai_fake):
    name = "<!channel> & <https://evil.example|https://corp.example>.md"
    unsupported = "<@U999>.exe"
    async with running_bot(slack, openai_fake) as bot:
        doc = slack.add_file(name=name, content=MD, mimetype="text/markdown", filetype="markdown", channel="C1")
        exe = slack.add_file(name=unsupported, content=b"MZ", mimetype="application/octet-stream", filetype="exe")
        event = await share_files(bot, "C1", [doc, exe])
        await wait_for(lambda: reply_texts(slack, "C1", event["ts"]))
    [note] = reply_texts(slack, "C1", event["ts"])
    assert "<!channel>" not in note and "<https://evil" not in note and "<@U999>" not in note
    added, refused = note.splitlines()  # one line per file, in the message's order
    shown = "&lt;!channel&gt; &amp; &lt;https://evil.example|https://corp.example&gt;.md"
    assert added == f"📚 Added *{shown}* to <#C1>'s knowledge."
    assert refused.startswith("⚠️ I can't use *&lt;@U999&gt;.exe* (type .exe)")


# -- a file shared in two channels, deleted in Slack -------------------------------------------------------------
async def test_a_file_deleted_in_slack_leaves_every_channel_that_holds_it(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        file = slack.add_file(name="policy.md", content=MD, mimetype="text/markdown", filetype="markdown")
        for channel in ("C1", "C2"):
            event = await share_files(bot, channel, [file])
            await wait_for(lambda: reply_texts(slack, channel, event["ts"]))
        assert len(openai_fake.vector_stores) == 2
        assert all(len(store["files"]) == 1 for store in openai_fake.vector_stores.values())
        await bot.send(file_deleted(file["id"]))
        await wait_for(lambda: not openai_fake.files)
    assert all(store["files"] == {} for store in openai_fake.vector_stores.values())


# -- OpenAI's error text stays in the log -----------------------------------------------------------------------
# An explicit state: with `auto`, a refused key already stops the bot at start (the probe says so).
@pytest.mark.parametrize("state_mode", ["conversation"])
async def test_openai_error_text_is_never_posted_on_intake(slack, openai_fake, caplog):
    openai_fake.api_key = "sk-rotated"  # the bot's key is now refused: OpenAI answers 401 with its own words
    async with running_bot(slack, openai_fake, ASSIST_BOT_OPENAI_MAX_RETRIES=0) as bot:
        doc = slack.add_file(name="a.md", content=MD, mimetype="text/markdown", filetype="markdown", channel="C1")
        event = await share_files(bot, "C1", [doc])
        await wait_for(lambda: reply_texts(slack, "C1", event["ts"]))
    [note] = reply_texts(slack, "C1", event["ts"])
    assert note == (
        "⚠️ I could not add *a.md*: the bot's access to the AI service was refused (an admin needs to check its API key)"
    )
    assert "Incorrect API key" not in note
    assert "Incorrect API key" in caplog.text  # the details are for the operator, in the log


# -- a cap on downloads at once ------------------------------------------------------------------------------
async def test_concurrent_downloads_are_capped_per_process(slack, openai_fake):
    async with running_bot(slack, openai_fake, ASSIST_BOT_MAX_CONCURRENT_DOWNLOADS=2) as bot:
        gates, events = [], []
        for n in range(5):
            file = slack.add_file(name=f"d{n}.md", content=MD, mimetype="text/markdown", filetype="markdown")
            gates.append(slack.file_hold(file["id"]))
            events.append(await share_files(bot, f"C{n}", [file]))
        await wait_for(lambda: slack.downloads_in_flight == 2)
        await asyncio.sleep(0.2)  # not a timing assertion: a chance for a third download to start if it could
        assert slack.downloads_in_flight == 2
        for gate in gates:
            gate.set()
        for n, event in enumerate(events):
            await wait_for(lambda: reply_texts(slack, f"C{n}", event["ts"]))
    assert slack.max_downloads_in_flight == 2
    assert all(reply_texts(slack, f"C{n}", e["ts"])[0].startswith("📚") for n, e in enumerate(events))


async def test_a_mention_with_a_file_still_answers_after_intake(slack, openai_fake):
    stub = slack.add_file(
        name="q.md", content=MD, mimetype="text/markdown", filetype="markdown", file_access="check_file_info"
    )
    async with running_bot(slack, openai_fake) as bot:
        event = await share_files(bot, "C1", [stub], text="<@UBOT> what does it say?")
        await wait_for(lambda: openai_fake.response_requests)
    assert reply_texts(slack, "C1", event["ts"])[0] == "📚 Added *q.md* to <#C1>'s knowledge."


async def test_a_cited_file_with_a_hostile_name_is_footnoted_as_text(slack, openai_fake):
    from tests.fakes.openai import Text
    from tests.fakes.slack import mention

    name = "<!here> <https://evil.example|https://corp.example>.md"
    async with running_bot(slack, openai_fake, ASSIST_BOT_STREAM_MODE="edit") as bot:
        doc = slack.add_file(name=name, content=MD, mimetype="text/markdown", filetype="markdown", channel="C1")
        shared = await share_files(bot, "C1", [doc])
        await wait_for(lambda: reply_texts(slack, "C1", shared["ts"]))
        [file_id] = openai_fake.files
        openai_fake.enqueue(
            Text(
                ["25 days."], annotations=[{"type": "file_citation", "file_id": file_id, "filename": name, "index": 8}]
            )
        )
        question = mention("C1", "U2", "how many days?")
        await bot.send(question)
        await reply_containing(slack, "C1", question["ts"], "Sources")
    [answer] = reply_texts(slack, "C1", question["ts"])
    footnote = answer.split("*Sources*\n", 1)[1]
    assert footnote == f"[1] <{doc['permalink']}|&lt;!here&gt; &lt;https://evil.example|https://corp.example&gt;.md>"


async def test_files_the_model_makes_are_titled_and_noted_as_text(slack, openai_fake):
    """A code-interpreter file name is the model's to choose, so it is escaped like any name."""
    from tests.fakes.slack import mention

    openai_fake.enqueue(
        answer_citing_a_file_it_made(
            openai_fake, container="cntr_hostile", filename="<!channel>.png", content=b"\x89PNG 1", text="Charts."
        )
    )
    async with running_bot(slack, openai_fake) as bot:
        question = mention("C1", "U1", "<@UBOT> draw it")
        await bot.send(question)
        await wait_for(lambda: slack.uploads)
    [upload] = slack.uploads
    assert upload.filename == "<!channel>.png"  # the file keeps its name; only what is shown as text is escaped
    assert upload.title == "&lt;!channel&gt;.png"


async def test_a_failed_upload_names_the_file_as_text(slack, openai_fake):
    from tests.fakes.openai import Text
    from tests.fakes.slack import mention

    container = "cntr_fail"

    def draw(body):
        openai_fake.add_container_file(container, "<!here>.csv", b"a,b\n")
        return Text(["Done."], container_id=container)

    openai_fake.enqueue(draw)
    slack.fail_next("files.getUploadURLExternal", error="not_allowed_token_type")
    async with running_bot(slack, openai_fake) as bot:
        question = mention("C1", "U1", "<@UBOT> make a csv")
        await bot.send(question)
        await reply_containing(slack, "C1", question["ts"], "could not upload")
    [note] = [n for n in reply_texts(slack, "C1", question["ts"]) if "could not upload" in n]
    assert note == "⚠️ I made *&lt;!here&gt;.csv* but could not upload it here."
