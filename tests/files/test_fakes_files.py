"""Proof that the fakes' file endpoints speak the real wire formats: the official SDKs use them unchanged."""

from __future__ import annotations

import contextlib

import openai
import pytest
from openai.types.responses import (
    ResponseCodeInterpreterToolCall,
    ResponseCompletedEvent,
    ResponseOutputTextAnnotationAddedEvent,
)
from openai.types.responses.response_output_text_annotation_added_event import (
    AnnotationContainerFileCitation,
    AnnotationFileCitation,
    AnnotationFilePath,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.openai import FakeOpenAI, Text
from tests.fakes.slack import event_body, file_deleted, file_share_message

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def oai():
    async with contextlib.AsyncExitStack() as stack:
        fake = await stack.enter_async_context(FakeOpenAI(vector_file_polls=2))
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)
        )
        yield fake, client


async def test_files_roundtrip(oai):
    fake, client = oai
    created = await client.files.create(file=("notes.txt", b"hello notes"), purpose="assistants")
    assert created.id.startswith("file-") and (created.filename, created.bytes, created.status) == (
        "notes.txt",
        11,
        "processed",
    )
    assert (await client.files.retrieve(created.id)).purpose == "assistants"
    assert (await client.files.content(created.id)).read() == b"hello notes"
    assert fake.files[created.id]["content"] == b"hello notes"
    assert (await client.files.delete(created.id)).deleted
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(created.id)


async def test_vector_store_files_poll_to_completed_or_failed(oai):
    fake, client = oai
    fake.fail_vector_file("bad.bin", message="cannot parse")
    store = await client.vector_stores.create(
        name="thread C1:1.1", metadata={"slack_thread": "C1:1.1"}, expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert store.id.startswith("vs_") and store.expires_after.days == 7 and store.expires_at
    good = await client.files.create(file=("good.pdf", b"%PDF"), purpose="assistants")
    bad = await client.files.create(file=("bad.bin", b"\0\1"), purpose="assistants")

    attached = await client.vector_stores.files.create(store.id, file_id=good.id, attributes={"slack_file": "F1"})
    assert attached.status == "in_progress"
    first = await client.vector_stores.files.retrieve(good.id, vector_store_id=store.id)
    assert first.status == "in_progress"  # vector_file_polls=2: the second poll completes it
    done = await client.vector_stores.files.poll(good.id, vector_store_id=store.id, max_wait_seconds=5)
    assert done.status == "completed" and done.attributes == {"slack_file": "F1"}

    failed = await client.vector_stores.files.create_and_poll(
        file_id=bad.id, vector_store_id=store.id, max_wait_seconds=5
    )
    assert failed.status == "failed"
    assert (failed.last_error.code, failed.last_error.message) == ("unsupported_file", "cannot parse")

    listed = [f async for f in client.vector_stores.files.list(store.id)]
    assert {f.id: f.status for f in listed} == {good.id: "completed", bad.id: "failed"}
    counts = (await client.vector_stores.retrieve(store.id)).file_counts
    assert (counts.completed, counts.failed, counts.total) == (1, 1, 2)
    assert (await client.vector_stores.files.delete(bad.id, vector_store_id=store.id)).deleted
    assert (await client.vector_stores.delete(store.id)).deleted and not fake.vector_stores


async def test_containers_and_their_files(oai):
    fake, client = oai
    seed = await client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="user_data")
    container = await client.containers.create(
        name="turn", file_ids=[seed.id], expires_after={"anchor": "last_active_at", "minutes": 20}
    )
    assert container.id.startswith("cntr_") and container.name == "turn"
    uploaded = await client.containers.files.create(container.id, file=("more.txt", b"more"))
    copied = await client.containers.files.create(container.id, file_id=seed.id)
    assert (uploaded.path, uploaded.bytes, uploaded.source) == ("/mnt/data/more.txt", 4, "user")
    assert copied.path == "/mnt/data/data.csv" and copied.id.startswith("cfile_")
    assert len([f async for f in client.containers.files.list(container.id)]) == 3  # the seed was copied too

    chart = fake.add_container_file(container.id, "chart.png", b"\x89PNG fake")
    got = await client.containers.files.retrieve(chart, container_id=container.id)
    assert (got.path, got.source) == ("/mnt/data/chart.png", "assistant")
    content = await client.containers.files.content.retrieve(chart, container_id=container.id)
    assert content.read() == b"\x89PNG fake"
    fresh = fake.add_container_file("cntr_made_by_the_model", "out.txt", b"x")  # unknown container: created
    assert (await client.containers.retrieve("cntr_made_by_the_model")).id == "cntr_made_by_the_model"
    assert fresh in fake.containers["cntr_made_by_the_model"]["files"]
    with pytest.raises(openai.NotFoundError):
        await client.containers.retrieve("cntr_nope")


ANNOTATIONS = [
    {"type": "file_citation", "file_id": "file-abc", "filename": "report.pdf", "index": 4},
    {
        "type": "container_file_citation",
        "container_id": "cntr_x",
        "file_id": "cfile_1",
        "filename": "chart.png",
        "start_index": 10,
        "end_index": 20,
    },
    {"type": "file_path", "file_id": "cfile_1", "index": 20},
]


async def test_streamed_annotations_and_code_outputs_parse_into_typed_events(oai):
    fake, client = oai
    outputs = [{"type": "logs", "logs": "saved"}, {"type": "image", "url": "https://example.invalid/chart.png"}]
    fake.enqueue(
        Text(["See ", "the chart ", "below."], annotations=ANNOTATIONS, code_outputs=outputs, container_id="cntr_x")
    )
    stream = await client.responses.create(model="gpt-5.4-mini", input="chart please", stream=True)
    events = [e async for e in stream]

    added = [e for e in events if isinstance(e, ResponseOutputTextAnnotationAddedEvent)]
    assert [type(e.annotation) for e in added] == [
        AnnotationFileCitation,
        AnnotationContainerFileCitation,
        AnnotationFilePath,
    ]
    assert [e.annotation_index for e in added] == [0, 1, 2]
    types = [e.type for e in events]
    # announced once the text has reached the position they point at, before the text is done
    assert types.index("response.output_text.annotation.added") < types.index("response.output_text.done")
    part_done = next(e for e in events if e.type == "response.content_part.done")
    assert [a.type for a in part_done.part.annotations] == [a["type"] for a in ANNOTATIONS]

    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    call, message = completed.response.output
    assert isinstance(call, ResponseCodeInterpreterToolCall) and call.container_id == "cntr_x"
    assert [o.type for o in call.outputs] == ["logs", "image"] and call.outputs[1].url.endswith("chart.png")
    assert message.content[0].annotations[1].container_id == "cntr_x"

    fake.enqueue(Text(["plain ", "answer"], annotations=ANNOTATIONS[:1]))  # the SDK's stream helper accumulates too
    async with client.responses.stream(model="gpt-5.4-mini", input="x") as helper:
        final = await helper.get_final_response()
    assert final.output[0].content[0].annotations[0].filename == "report.pdf"
    fake.enqueue(Text(["not streamed"], annotations=ANNOTATIONS[2:]))
    plain = await client.responses.create(model="gpt-5.4-mini", input="x")
    assert plain.output[0].content[0].annotations[0].type == "file_path"


# slack_sdk hands aiohttp the upload as raw bytes, which aiohttp frowns upon past 1 MiB; not our code.
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
async def test_files_upload_v2_info_and_delete(slack):
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    png = b"\x89PNG" + bytes(range(256)) * 8192  # 2 MiB: more than aiohttp's default request cap
    sent = await client.files_upload_v2(
        channel="C1",
        thread_ts="1700000000.000100",
        file=png,
        filename="chart.png",
        title="Chart",
        initial_comment="here",
    )
    (upload,) = slack.uploads
    assert (upload.file_id, upload.filename, upload.title, upload.channel, upload.thread_ts) == (
        sent["file"]["id"],
        "chart.png",
        "Chart",
        "C1",
        "1700000000.000100",
    )
    assert upload.content == png
    info = (await client.files_info(file=upload.file_id))["file"]
    assert (info["name"], info["mimetype"], info["size"]) == ("chart.png", "image/png", len(png))
    await client.files_delete(file=upload.file_id)
    with pytest.raises(SlackApiError) as err:
        await client.files_info(file=upload.file_id)
    assert err.value.response["error"] == "file_not_found"


async def test_file_event_builders(slack):
    file = slack.add_file(name="a.txt", content=b"a", mimetype="text/plain", filetype="text", channel="C1")
    event = file_share_message("C1", "U1", "look", [file], thread_ts="1.000100")
    assert (event["type"], event["subtype"], event["files"][0]["id"], event["thread_ts"]) == (
        "message",
        "file_share",
        file["id"],
        "1.000100",
    )
    plain = event_body(file_deleted(file["id"]))["event"]
    assert plain == {"type": "file_deleted", "file_id": file["id"], "event_ts": plain["event_ts"]}
    deleted = file_deleted(file["id"], channel_ids=["C1"])
    assert (deleted["type"], deleted["file_id"], deleted["channel_ids"]) == ("file_deleted", file["id"], ["C1"])
