"""Files in, files out, over the real wire: documents feed the channel's
knowledge, data files the thread's code interpreter, images the model; charts
come back into the thread."""

from __future__ import annotations

import pytest

from tests.fakes.openai import Text
from tests.fakes.slack import file_deleted, file_share_message, mention, wait_for
from tests.support.answers import answer_citing_a_file_it_made
from tests.support.bot import running_bot
from tests.support.flows import reactions_on, reply_containing, reply_texts, response_to, share_file

pytestmark = pytest.mark.timeout(60)

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
CSV = b"month,sales\njan,10\nfeb,12\nmar,17\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_a_pdf_feeds_the_channels_knowledge_and_answers_cite_it(slack, openai_fake):
    # The sources footnote in the message text is the edit path's; native streaming puts it in the stop's blocks.
    async with running_bot(
        slack, openai_fake, ASSIST_BOT_VECTOR_STORE_EXPIRY_DAYS=30, ASSIST_BOT_STREAM_MODE="edit"
    ) as bot:
        event, file = await share_file(
            bot, slack, "C1", name="handbook.pdf", content=PDF, mimetype="application/pdf", filetype="pdf"
        )
        await reply_containing(slack, "C1", event["ts"], "handbook.pdf")
        assert reply_texts(slack, "C1", event["ts"]) == ["📚 Added *handbook.pdf* to <#C1>'s knowledge."]
        assert reactions_on(slack, event["ts"]) == [
            ("reactions.add", "hourglass_flowing_sand"),
            ("reactions.remove", "hourglass_flowing_sand"),
            ("reactions.add", "white_check_mark"),
        ]
        assert slack.download_tokens == [slack.bot_token]
        [store_id] = openai_fake.vector_stores
        vector_store = openai_fake.vector_stores[store_id]
        assert vector_store["meta"]["expires_after"] == {"anchor": "last_active_at", "days": 30}
        [(openai_file_id, attached)] = vector_store["files"].items()
        assert openai_fake.files[openai_file_id]["content"] == PDF
        assert attached["attributes"] == {
            "team": "T1",
            "channel": "C1",
            "uploader": "U1",
            "slack_file_id": file["id"],
            "file_name": "handbook.pdf",
        }
        assert openai_fake.response_requests == []  # no mention, no question: no turn

        openai_fake.enqueue(
            Text(
                ["The handbook says 25 days."],
                annotations=[
                    {"type": "file_citation", "file_id": openai_file_id, "filename": "handbook.pdf", "index": 26}
                ],
            )
        )
        question = mention("C1", "U2", "how many days of leave?")
        await bot.send(question)
        await reply_containing(slack, "C1", question["ts"], "Sources")
        other = mention("C2", "U2", "and in this channel?")
        await bot.send(other)
        await wait_for(
            lambda: reply_texts(slack, "C2", other["ts"]) and "You said" in reply_texts(slack, "C2", other["ts"])[0]
        )
    first, second = openai_fake.response_requests
    assert {"type": "file_search", "vector_store_ids": [store_id]} in first["tools"]
    assert not any(t["type"] == "file_search" for t in second.get("tools", []))  # never another channel's
    [answer] = reply_texts(slack, "C1", question["ts"])
    assert answer.endswith(f"*Sources*\n[1] <{file['permalink']}|handbook.pdf>")


async def test_a_csv_goes_to_the_threads_code_interpreter_and_the_chart_comes_back(slack, openai_fake):
    chart = b"\x89PNG chart bytes"
    openai_fake.enqueue(
        answer_citing_a_file_it_made(
            openai_fake, container="cntr_thread1", filename="chart.png", content=chart, text="Here is the chart."
        )
    )
    async with running_bot(slack, openai_fake) as bot:
        event, _ = await share_file(
            bot,
            slack,
            "C1",
            name="sales.csv",
            content=CSV,
            mimetype="text/csv",
            filetype="csv",
            text="<@UBOT> chart the sales per month",
        )
        await wait_for(lambda: slack.uploads)
        await reply_containing(slack, "C1", event["ts"], "Here is the chart")
        # A follow-up in the thread, no mention: the thread's files are still there.
        from tests.fakes.slack import message

        await bot.send(message("C1", "U1", "and as a table?", thread_ts=event["ts"]))
        await wait_for(lambda: len(openai_fake.response_requests) == 2)
    assert (
        reply_texts(slack, "C1", event["ts"])[0] == "📊 Added *sales.csv* to this thread's code interpreter: ask away."
    )
    [data_file] = [f for f in openai_fake.files.values() if f["filename"] == "sales.csv"]
    for request in openai_fake.response_requests:
        [tool] = [t for t in request["tools"] if t["type"] == "code_interpreter"]
        assert tool["container"] == {"type": "auto", "file_ids": [data_file["id"]]}
    [upload] = slack.uploads  # once, though both the citation and the container listing name it
    assert (upload.filename, upload.content, upload.channel, upload.thread_ts) == (
        "chart.png",
        chart,
        "C1",
        event["ts"],
    )


async def test_a_screenshot_is_sent_as_an_input_image(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        event, _ = await share_file(
            bot,
            slack,
            "D1",
            name="screen.png",
            content=PNG,
            mimetype="image/png",
            filetype="png",
            text="what is on this screenshot?",
            channel_type="im",
        )
        await wait_for(lambda: openai_fake.response_requests)
    [image] = [f for f in openai_fake.files.values() if f["filename"] == "screen.png"]
    assert image["purpose"] == "vision" and image["content"] == PNG
    content = openai_fake.response_requests[0]["input"][0]["content"]
    assert content[0]["text"].endswith("what is on this screenshot?")
    assert content[1] == {"type": "input_image", "file_id": image["id"], "detail": "auto"}
    assert openai_fake.vector_stores == {}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("setup.exe", b"MZ...", "I can't use *setup.exe* (type .exe)"),
        ("empty.pdf", b"", "is empty"),
    ],
)
async def test_unusable_files_get_a_clear_reply_and_nothing_is_uploaded(slack, openai_fake, name, content, expected):
    async with running_bot(slack, openai_fake) as bot:
        event, _ = await share_file(
            bot,
            slack,
            "C1",
            name=name,
            content=content,
            mimetype="application/octet-stream",
            filetype=name.rsplit(".", 1)[1],
        )
        await wait_for(lambda: reply_texts(slack, "C1", event["ts"]))
    assert expected in reply_texts(slack, "C1", event["ts"])[0]
    assert openai_fake.files == {} and openai_fake.vector_stores == {}


async def test_oversize_and_unreadable_files_are_refused_without_storing_anything(slack, openai_fake):
    async with running_bot(slack, openai_fake, ASSIST_BOT_MAX_FILE_MB=1) as bot:
        big, _ = await share_file(
            bot,
            slack,
            "C1",
            name="big.pdf",
            content=PDF,
            mimetype="application/pdf",
            filetype="pdf",
            size=5 * 1024 * 1024,
        )
        locked = slack.add_file(name="locked.pdf", content=PDF, mimetype="application/pdf", filetype="pdf")
        slack.file_serve_html(locked["id"])
        event = file_share_message("C1", "U1", "", [locked])
        await bot.send(event)
        await wait_for(lambda: reply_texts(slack, "C1", big["ts"]) and reply_texts(slack, "C1", event["ts"]))
    assert "the limit is 1 MB" in reply_texts(slack, "C1", big["ts"])[0]
    assert "did not let me read" in reply_texts(slack, "C1", event["ts"])[0]
    assert ("reactions.add", "warning") in reactions_on(slack, event["ts"])
    assert openai_fake.files == {}


async def test_a_failed_indexing_says_why_and_leaves_nothing_behind(slack, openai_fake):
    # The service's own words never reach the channel (a proxy in between may echo the request, key included).
    openai_fake.fail_vector_file("scan.pdf", code="unsupported_file", message="echo: Bearer sk-test")
    async with running_bot(slack, openai_fake) as bot:
        event, _ = await share_file(
            bot, slack, "C1", name="scan.pdf", content=PDF, mimetype="application/pdf", filetype="pdf"
        )
        await wait_for(lambda: reply_texts(slack, "C1", event["ts"]))
        listing = await bot.command(slack, "/assist", "files")
        response = await response_to(slack, listing)
    assert reply_texts(slack, "C1", event["ts"]) == [
        "⚠️ I could not add *scan.pdf*: "
        "the AI service cannot read this file (is it encrypted, a scan, or empty of text?)"
    ]
    assert openai_fake.files == {}
    assert all(not store["files"] for store in openai_fake.vector_stores.values())
    assert "knowledge is empty" in response["text"]


async def test_listing_forgetting_and_slack_deletion(slack, openai_fake):
    slack.users["U1"] = {"is_admin": True}  # with no ASSIST_BOT_ADMINS, changes are for workspace admins
    async with running_bot(slack, openai_fake) as bot:
        shared = []
        for name in ("a.md", "b.md"):
            event, file = await share_file(
                bot,
                slack,
                "C1",
                name=name,
                content=b"# " + name.encode(),
                mimetype="text/markdown",
                filetype="markdown",
            )
            await wait_for(lambda: reply_texts(slack, "C1", event["ts"]))
            shared.append(file)
        url = await bot.command(slack, "/assist", "files")
        listing = await response_to(slack, url)
        assert "a.md" in listing["text"] and "b.md" in listing["text"]
        url = await bot.command(slack, "/assist", "forget a.md")
        forgot = await response_to(slack, url)
        assert forgot["text"] == "Removed *a.md* from this channel's knowledge."
        await bot.send(file_deleted(shared[1]["id"]))
        await wait_for(lambda: not openai_fake.files)
    [store] = openai_fake.vector_stores.values()
    assert store["files"] == {}


async def test_intake_off_ignores_files_not_addressed_to_the_bot(slack, openai_fake):
    slack.users["U1"] = {"is_admin": True}  # with no ASSIST_BOT_ADMINS, changes are for workspace admins
    async with running_bot(slack, openai_fake) as bot:
        url = await bot.command(slack, "/assist", "intake off")
        await response_to(slack, url)
        event, _ = await share_file(
            bot, slack, "C1", name="doc.md", content=b"# doc", mimetype="text/markdown", filetype="markdown"
        )
        addressed, _ = await share_file(
            bot,
            slack,
            "C1",
            name="asked.md",
            content=b"# asked",
            mimetype="text/markdown",
            filetype="markdown",
            text="<@UBOT> keep this",
        )
        await wait_for(lambda: reply_texts(slack, "C1", addressed["ts"]))
    assert reply_texts(slack, "C1", event["ts"]) == []
    assert [f["filename"] for f in openai_fake.files.values()] == ["asked.md"]


async def test_a_dm_has_its_own_knowledge(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        await share_file(
            bot, slack, "C1", name="team.md", content=b"# team", mimetype="text/markdown", filetype="markdown"
        )
        event, _ = await share_file(
            bot,
            slack,
            "D1",
            name="mine.md",
            content=b"# mine",
            mimetype="text/markdown",
            filetype="markdown",
            channel_type="im",
        )
        await wait_for(
            lambda: len(openai_fake.vector_stores) == 2 and all(s["files"] for s in openai_fake.vector_stores.values())
        )
    metas = sorted(s["meta"]["metadata"]["channel"] for s in openai_fake.vector_stores.values())
    assert metas == ["C1", "D1"]


async def test_an_expired_vector_store_is_replaced_and_never_breaks_answers(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        event, _ = await share_file(
            bot, slack, "C1", name="old.md", content=b"# old", mimetype="text/markdown", filetype="markdown"
        )
        await wait_for(lambda: reply_texts(slack, "C1", event["ts"]))
        [expired] = list(openai_fake.vector_stores)
        del openai_fake.vector_stores[expired]  # OpenAI expired it after days unused
        question = mention("C1", "U1", "what do we know?")
        await bot.send(question)
        await reply_containing(slack, "C1", question["ts"], "You said")
        await bot.settled()
        again, _ = await share_file(
            bot, slack, "C1", name="new.md", content=b"# new", mimetype="text/markdown", filetype="markdown"
        )
        await wait_for(lambda: reply_texts(slack, "C1", again["ts"]))
    assert reply_texts(slack, "C1", again["ts"]) == ["📚 Added *new.md* to <#C1>'s knowledge."]
    [fresh] = list(openai_fake.vector_stores)
    assert fresh != expired and len(openai_fake.vector_stores[fresh]["files"]) == 1
    failed, retried = openai_fake.response_requests
    assert any(t["type"] == "file_search" for t in failed["tools"])
    assert not any(t["type"] == "file_search" for t in retried.get("tools", []))
    assert failed["conversation"] == retried["conversation"]  # the thread kept its conversation


async def test_a_document_shared_after_the_vector_store_expired_starts_a_new_one(slack, openai_fake):
    async with running_bot(slack, openai_fake) as bot:
        first, _ = await share_file(
            bot, slack, "C1", name="a.md", content=b"# a", mimetype="text/markdown", filetype="markdown"
        )
        await wait_for(lambda: reply_texts(slack, "C1", first["ts"]))
        openai_fake.vector_stores.clear()  # expired
        second, _ = await share_file(
            bot, slack, "C1", name="b.md", content=b"# b", mimetype="text/markdown", filetype="markdown"
        )
        await wait_for(lambda: reply_texts(slack, "C1", second["ts"]))
        url = await bot.command(slack, "/assist", "files")
        listing = await response_to(slack, url)
    assert reply_texts(slack, "C1", second["ts"]) == ["📚 Added *b.md* to <#C1>'s knowledge."]
    [store] = openai_fake.vector_stores.values()
    assert [f["attributes"]["file_name"] for f in store["files"].values()] == ["b.md"]
    assert "b.md" in listing["text"] and "a.md" not in listing["text"]  # the index follows the store


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_an_upload_refused_by_openai_gets_a_generic_note_never_the_apis_text(slack, openai_fake, status):
    # A proxy in front of OpenAI may echo the request, key included, into its error text.
    openai_fake.upload_errors.append((status, "Incorrect API key provided: sk-proj-LEAKED1234567890"))
    async with running_bot(slack, openai_fake) as bot:
        event, _ = await share_file(
            bot, slack, "C1", name="handbook.pdf", content=PDF, mimetype="application/pdf", filetype="pdf"
        )
        await wait_for(lambda: reply_texts(slack, "C1", event["ts"]))
    (note,) = reply_texts(slack, "C1", event["ts"])
    assert note.startswith("⚠️ I could not add *handbook.pdf*: ") and "AI service" in note
    assert "sk-" not in note and "Incorrect API key" not in note
