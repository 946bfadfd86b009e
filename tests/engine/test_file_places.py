"""Where the bot's files live: records of the bot's own server keep the shape they had
before servers were recorded; another server's name that server."""

from __future__ import annotations

from assist_bot.engine.file_places import thread_file_token, thread_files_at, vector_store_setting, vector_stores

THERE = "https://llm.example.com/v1 key=SECOND_OPENAI_KEY"


def test_the_bots_own_server_keeps_the_old_names():
    assert vector_store_setting("") == "vector_store_id"
    assert thread_file_token("file-1", "") == "file-1"


def test_a_channels_vector_stores_by_server():
    settings = {"assistant": "general", "vector_store_id": "vs_own", vector_store_setting(THERE): "vs_there"}
    assert vector_stores(settings) == {"": "vs_own", THERE: "vs_there"}
    assert vector_stores({"intake": "off"}) == {}


def test_a_turn_gets_only_the_thread_files_of_its_own_server():
    tokens = ["file-old", thread_file_token("file-there", THERE), thread_file_token("file-own", "")]
    assert thread_files_at(tokens, "") == ["file-old", "file-own"]
    assert thread_files_at(tokens, THERE) == ["file-there"]
