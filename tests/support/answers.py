"""What the fake model answers in the scenario tests, where several tests script the same
answer (FakeOpenAI.enqueue takes a reply, or a function of the request that returns one)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.fakes.openai import FakeOpenAI, Text, function_outputs


def answer_with_outputs(body: dict) -> Text:
    """The model's round after its tool calls: it repeats what the tools returned."""
    return Text.of("Tools said: " + json.dumps(sorted(function_outputs(body).values())))


def answer_citing_a_file_it_made(
    server: FakeOpenAI, *, container: str, filename: str, content: bytes, text: str
) -> Callable[[dict], Text]:
    """The model's code interpreter made a file in `container` on `server` (a chart, say);
    the answer, `text`, cites it."""

    def answer(body: dict) -> Text:
        file_id = server.add_container_file(container, filename, content)
        citation = {
            "type": "container_file_citation",
            "container_id": container,
            "file_id": file_id,
            "filename": filename,
            "start_index": 0,
            "end_index": len(text),
        }
        return Text([text], container_id=container, annotations=[citation])

    return answer
