import pytest

from assist_bot.assistants import Assistants, Backend
from assist_bot.errors import AssistantsFileError
from tests.support.assistants_files import write_assistants_file

GOOD = """
version = 1
default = "general"

[assistants.general]
instructions = "Be brief."
temperature = 0.2

[assistants.coder]
model = "gpt-5.4"
instructions = "You write Python."
tools = ["get_weather"]
"""


def test_builtin_default_works_without_a_file():
    assistants = Assistants.load(None, model="gpt-5.4-mini")
    assert assistants.default.name == "default"
    assert assistants.default.model == "gpt-5.4-mini"
    assert assistants.default.instructions


def test_file_defines_named_assistants(tmp_path):
    path = write_assistants_file(tmp_path, GOOD)
    assistants = Assistants.load(path, model="fallback-model")
    assert assistants.names() == ["coder", "general"]
    assert assistants.default.name == "general"
    assert assistants.default.model == "fallback-model"  # no model named: ASSIST_BOT_MODEL
    assert assistants.default.temperature == 0.2
    coder = assistants.get("coder")
    assert (coder.model, coder.tools) == ("gpt-5.4", ("get_weather",))
    assert assistants.get("removed-since").name == "general"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("version = 1\ndefault = 'x'\n[assistants.y]\n", "default assistant 'x' is not defined"),
        ("version = 9\ndefault = 'y'\n[assistants.y]\n", "version 9 is not supported"),
        ("version = 1\ndefault = 'y'\n[assistants.y]\ntemprature = 1\n", "assistants.y.temprature"),
        ("version = 1\ndefault = 'y'\n[assistants.y]\ntemperature = 5\n", "assistants.y.temperature"),
        ("version = [", "Invalid value"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path, text, reason):
    path = write_assistants_file(tmp_path, text)
    with pytest.raises(AssistantsFileError) as info:
        Assistants.load(path, model="m")
    assert reason in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("field", ["base_url", "azure_endpoint"])
@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://llm.example.com/v1", True),
        ("http://localhost:11434/v1", True),
        ("http://127.0.0.1:4000", True),
        ("http://llm.example.com/v1", False),
        ("http://10.1.2.3:4000/v1", False),
    ],
)
def test_a_backend_that_sends_a_key_must_use_https_unless_loopback(tmp_path, field, url, ok):
    backend = f"{{ {field} = '{url}', api_key_env = 'LLM_KEY' }}"
    path = write_assistants_file(tmp_path, f"version = 1\ndefault = 'y'\n[assistants.y]\nbackend = {backend}\n")
    if ok:
        assert getattr(Assistants.load(path, model="m").default.backend, field) == url
        return
    with pytest.raises(AssistantsFileError) as info:
        Assistants.load(path, model="m")
    assert "assistants.y.backend" in str(info.value)
    assert f"{field} must use https" in str(info.value) and "api_key_env" in str(info.value)


@pytest.mark.parametrize(
    ("url", "ok"),
    [("http://ollama.internal:11434/v1", True), ("ollama.internal:11434", False), ("ftp://llm.example.com", False)],
)
def test_a_backend_without_a_key_may_be_plain_http_on_the_network(tmp_path, url, ok):
    """No key travels (the OpenAI key never goes to another server), so nothing secret is exposed."""
    path = write_assistants_file(
        tmp_path, f"version = 1\ndefault = 'y'\n[assistants.y]\nbackend = {{ base_url = '{url}' }}\n"
    )
    if ok:
        assert Assistants.load(path, model="m").default.backend.base_url == url
        return
    with pytest.raises(AssistantsFileError) as info:
        Assistants.load(path, model="m")
    assert "base_url must be a URL" in str(info.value)


@pytest.mark.parametrize(
    ("backend", "server"),
    [
        ({}, ""),  # the bot's own server
        ({"state": "local", "api_version": "2025-04-01-preview"}, ""),  # same server, same key
        ({"api_key_env": "SECOND_KEY"}, "key=SECOND_KEY"),  # another account at OPENAI_BASE_URL
        ({"base_url": "http://10.0.0.5:8000/v1/"}, "http://10.0.0.5:8000/v1"),
        (
            {"base_url": "https://user:secret@llm.example.com/v1?api-key=sk-x", "api_key_env": "LLM_KEY"},
            "https://llm.example.com/v1 key=LLM_KEY",
        ),
        (
            {"azure_endpoint": "https://contoso.openai.azure.com/", "api_version": "v", "api_key_env": "AZ"},
            "https://contoso.openai.azure.com key=AZ",
        ),
    ],
)
def test_a_backend_names_its_server_without_secrets(backend, server):
    assert Backend(**backend).server == server
