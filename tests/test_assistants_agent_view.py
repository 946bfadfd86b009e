"""The assistants file's agent-view settings: suggested prompts and reading the viewed channel."""

from pathlib import Path

import pytest

from assist_bot.assistants import DEFAULT_SUGGESTED_PROMPTS, Assistants
from assist_bot.errors import AssistantsFileError
from tests.support.assistants_files import write_assistants_file

EXAMPLE = Path(__file__).parents[1] / "assistants.example.toml"


def load(tmp_path, body: str) -> Assistants:
    path = write_assistants_file(tmp_path, 'version = 1\ndefault = "a"\n[assistants.a]\n' + body)
    return Assistants.load(path, model="m")


def test_prompts_come_from_the_file_or_a_default(tmp_path):
    assistants = load(tmp_path, 'suggested_prompts = [{ title = "Hi", message = "Say hi" }]\n')
    [prompt] = assistants.default.suggested_prompts
    assert (prompt.title, prompt.message) == ("Hi", "Say hi")
    assert load(tmp_path, "").default.suggested_prompts == DEFAULT_SUGGESTED_PROMPTS
    assert Assistants.builtin(model="m").default.suggested_prompts == DEFAULT_SUGGESTED_PROMPTS
    assert load(tmp_path, "").default.viewed_channel_messages == 0  # name and topic only, by default


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("suggested_prompts = [" + '{ title = "t", message = "m" },' * 5 + "]\n", "suggested_prompts"),
        ('suggested_prompts = [{ title = "", message = "m" }]\n', "suggested_prompts.0.title"),
        ('suggested_prompts = [{ title = "t" }]\n', "suggested_prompts.0.message"),
        ("viewed_channel_messages = 500\n", "viewed_channel_messages"),
    ],
)
def test_bad_agent_view_settings_name_the_field(tmp_path, body, where):
    with pytest.raises(AssistantsFileError) as err:
        load(tmp_path, body)
    assert f"assistants.a.{where}" in str(err.value)


def test_the_example_file_loads():
    general = Assistants.load(EXAMPLE, model="m").get("general")
    assert len(general.suggested_prompts) == 2 and general.viewed_channel_messages == 20
