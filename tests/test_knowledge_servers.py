"""A channel's files live at the model server of the assistant that uses them, over the
real wire with two model servers (two FakeOpenAI): documents are uploaded and indexed
there and searched there, a thread's data files go to that server's code interpreter
and its charts come back from there, clean-up deletes each thing where it is. A
channel that switches to an assistant on the other server answers without the files
kept at the old one, says so, and starts a vector store at the new one."""

from __future__ import annotations

import pytest

from assist_bot import texts
from assist_bot.assistants import Backend
from assist_bot.store import ChannelKey
from assist_bot.store.ledger import Owner, Resource
from tests.fakes.openai import FakeOpenAI, Text
from tests.fakes.slack import mention, message, wait_for
from tests.support.answers import answer_citing_a_file_it_made
from tests.support.bot import running_bot
from tests.support.flows import reply_containing, reply_texts, response_to, share_file
from tests.support.second_server import KEY_ENV, assistants_file

pytestmark = pytest.mark.timeout(60)

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
MD = b"# Notes\nThe office opens at nine.\n"
CSV = b"month,sales\njan,10\nfeb,12\n"


async def command(bot, slack, *words: str, user: str = "UADMIN") -> str:
    url = await bot.command(slack, "/assist", " ".join(words), user=user, channel="C1")
    return (await response_to(slack, url))["text"]


async def add_document(bot, slack, *, name: str, content: bytes, **file_kw) -> dict:
    """The Slack file, once the thread was told it joined the channel's knowledge."""
    event, file = await share_file(bot, slack, "C1", name=name, content=content, **file_kw)
    await wait_for(lambda: texts.added_to_knowledge(name, "C1") in reply_texts(slack, "C1", event["ts"]))
    await bot.settled()  # recorded in the ledger too
    return file


async def ask(bot, slack, text: str) -> str:
    question = mention("C1", "U2", text)
    await bot.send(question)
    await wait_for(lambda: reply_texts(slack, "C1", question["ts"]))
    await bot.settled()
    return reply_texts(slack, "C1", question["ts"])[0]


def file_searches(request: dict) -> list[list[str]]:
    return [t["vector_store_ids"] for t in request.get("tools", []) if t["type"] == "file_search"]


async def test_a_document_is_uploaded_indexed_and_searched_at_the_server_of_the_channels_assistant(
    slack, openai_fake, tmp_path, monkeypatch
):
    async with FakeOpenAI("sk-second") as second:
        file = assistants_file(tmp_path, second, monkeypatch)  # C1's (the default) assistant lives there
        there = Backend(base_url=second.base_url, api_key_env=KEY_ENV).server
        async with running_bot(
            slack, openai_fake, ASSIST_BOT_ASSISTANTS=file, ASSIST_BOT_ADMINS="UADMIN", ASSIST_BOT_STREAM_MODE="edit"
        ) as bot:
            doc = await add_document(
                bot, slack, name="handbook.pdf", content=PDF, mimetype="application/pdf", filetype="pdf"
            )
            assert openai_fake.files == {} and openai_fake.vector_stores == {}
            [store_id] = second.vector_stores
            [file_id] = second.vector_stores[store_id]["files"]
            assert second.files[file_id]["content"] == PDF
            # Recorded with its server: clean-up deletes it there.
            resources = await bot.bot.ledger.resources(Owner("T1", "C1"))
            assert sorted(resources) == [Resource("file", file_id, there), Resource("vector_store", store_id, there)]

            second.enqueue(
                Text(
                    ["The handbook says 25 days."],
                    annotations=[
                        {"type": "file_citation", "file_id": file_id, "filename": "handbook.pdf", "index": 26}
                    ],
                )
            )
            said = await ask(bot, slack, "how many days of leave?")
            assert said.endswith(f"*Sources*\n[1] <{doc['permalink']}|handbook.pdf>")
            [request] = second.response_requests
            assert file_searches(request) == [[store_id]]
            assert openai_fake.response_requests == []

            assert "knowledge" in await command(bot, slack, "forget")  # the whole channel (admins)
            settings = await bot.bot.store.get_channel_settings(ChannelKey("T1", "C1"))
            assert not [name for name in settings if name.startswith("vector_store_id")]
        assert second.vector_stores == {} and second.files == {}
        assert f"/v1/vector_stores/{store_id}" in second.deletes and f"/v1/files/{file_id}" in second.deletes
        assert not [path for path in openai_fake.deletes if path.startswith(("/v1/files", "/v1/vector_stores"))]


async def test_a_threads_data_file_goes_to_that_servers_code_interpreter_and_its_chart_comes_back(
    slack, openai_fake, tmp_path, monkeypatch
):
    chart = b"\x89PNG chart bytes"
    async with FakeOpenAI("sk-second") as second:
        second.enqueue(
            answer_citing_a_file_it_made(
                second, container="cntr_there", filename="chart.png", content=chart, text="Here is the chart."
            )
        )
        file = assistants_file(tmp_path, second, monkeypatch)
        async with running_bot(slack, openai_fake, ASSIST_BOT_ASSISTANTS=file) as bot:
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
    [file_id] = second.files
    assert second.files[file_id]["content"] == CSV and openai_fake.files == {}
    [request] = second.response_requests
    [interpreter] = [t for t in request["tools"] if t["type"] == "code_interpreter"]
    assert interpreter["container"]["file_ids"] == [file_id]
    assert [u.content for u in slack.uploads] == [chart]
    assert openai_fake.response_requests == []


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_a_channel_that_switches_servers_answers_without_the_old_files_says_so_and_starts_anew(
    slack, openai_fake, tmp_path, monkeypatch, store, request
):
    redis_url = request.getfixturevalue("redis_url") if store == "redis" else None
    async with FakeOpenAI("sk-second") as second:
        file = assistants_file(tmp_path, second, monkeypatch)  # "general": the bot's own server
        there = Backend(base_url=second.base_url, api_key_env=KEY_ENV).server
        async with running_bot(
            slack, openai_fake, redis_url=redis_url, ASSIST_BOT_ASSISTANTS=file, ASSIST_BOT_ADMINS="UADMIN"
        ) as bot:
            if redis_url:
                await bot.bot.store._redis.flushdb()  # Redis outlives other tests
            channel = ChannelKey("T1", "C1")
            await command(bot, slack, "use", "general")
            await add_document(bot, slack, name="handbook.pdf", content=PDF, mimetype="application/pdf", filetype="pdf")
            [own_store] = openai_fake.vector_stores
            [own_file] = openai_fake.files
            # At the bot's own server, records keep the shape they always had.
            assert (await bot.bot.store.get_channel_settings(channel))["vector_store_id"] == own_store
            [record] = (await bot.bot.store.knowledge_files(channel)).values()
            assert "server" not in record

            await command(bot, slack, "use", "elsewhere")
            assert "You said" in await ask(bot, slack, "what does the handbook say?")
            [request] = second.response_requests
            assert file_searches(request) == []  # that store's id means nothing there
            assert openai_fake.response_requests == []
            stranded = texts.knowledge_elsewhere(1, "elsewhere", ["general"])
            assert "`/assist use general`" in stranded and "`/assist forget`" in stranded
            files = await command(bot, slack, "files", user="U1")
            assert "handbook.pdf" in files and files.endswith(stranded)
            assert (await command(bot, slack, "status", user="U1")).endswith(f"\n{stranded}")

            # New documents start a store at the new server; nothing at the old one is lost.
            await add_document(bot, slack, name="notes.md", content=MD, mimetype="text/markdown", filetype="markdown")
            [new_store] = second.vector_stores
            [new_file] = second.files
            assert list(openai_fake.vector_stores) == [own_store] and list(openai_fake.files) == [own_file]
            assert list(openai_fake.vector_stores[own_store]["files"]) == [own_file]
            assert Resource("vector_store", new_store, there) in await bot.bot.ledger.resources(Owner("T1", "C1"))
            await ask(bot, slack, "and the notes?")
            assert file_searches(second.response_requests[-1]) == [[new_store]]

            # Switching back searches the old store again, and the new one is the one away.
            await command(bot, slack, "use", "general")
            await ask(bot, slack, "the handbook again?")
            [back] = openai_fake.response_requests
            assert file_searches(back) == [[own_store]]
            assert (await command(bot, slack, "files", user="U1")).endswith(
                texts.knowledge_elsewhere(1, "general", ["elsewhere"])
            )

            await command(bot, slack, "forget")  # each thing deleted at its own server
        assert openai_fake.vector_stores == {} and openai_fake.files == {}
        assert second.vector_stores == {} and second.files == {}


async def test_a_threads_data_files_stay_at_their_server_when_the_channel_switches(
    slack, openai_fake, tmp_path, monkeypatch
):
    async with FakeOpenAI("sk-second") as second:
        file = assistants_file(tmp_path, second, monkeypatch)
        async with running_bot(slack, openai_fake, ASSIST_BOT_ASSISTANTS=file, ASSIST_BOT_ADMINS="UADMIN") as bot:
            await command(bot, slack, "use", "general")
            event, _ = await share_file(
                bot,
                slack,
                "C1",
                name="sales.csv",
                content=CSV,
                mimetype="text/csv",
                filetype="csv",
                text="<@UBOT> sum it",
            )
            await reply_containing(slack, "C1", event["ts"], "You said")
            [own_file] = openai_fake.files
            [first] = openai_fake.response_requests
            [interpreter] = [t for t in first["tools"] if t["type"] == "code_interpreter"]
            assert interpreter["container"]["file_ids"] == [own_file]

            await command(bot, slack, "use", "elsewhere")
            await bot.send(message("C1", "U1", "and per quarter?", thread_ts=event["ts"]))
            await wait_for(lambda: second.response_requests)
            await wait_for(lambda: sum("You said" in n for n in reply_texts(slack, "C1", event["ts"])) == 2)
    # That server would refuse another's file id: the answer goes ahead without it. (The
    # thread's conversation is the other server's too: it asks again with a new one.)
    for there in second.response_requests:
        assert not [t for t in there.get("tools", []) if t["type"] == "code_interpreter"]
    assert second.files == {} and list(openai_fake.files) == [own_file]


async def test_a_channel_on_the_bots_own_server_says_nothing_of_other_servers(slack, openai_fake):
    async with running_bot(slack, openai_fake, ASSIST_BOT_ADMINS="UADMIN") as bot:
        await add_document(bot, slack, name="handbook.pdf", content=PDF, mimetype="application/pdf", filetype="pdf")
        files = await command(bot, slack, "files", user="U1")
        status = await command(bot, slack, "status", user="U1")
    assert "handbook.pdf" in files and "⚠️" not in files and "⚠️" not in status
