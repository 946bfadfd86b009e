"""A second model server for the bot: another FakeOpenAI with a key of its own, named by
an assistants file the way an operator names another account, Azure or a local server."""

from __future__ import annotations

from pathlib import Path

from tests.support.assistants_files import write_assistants_file

KEY_ENV = "SECOND_OPENAI_KEY"

ASSISTANTS = """
version = 1
default = "elsewhere"

[assistants.general]
model = "gpt-5.4-mini"

[assistants.elsewhere]
model = "gpt-5.4-mini"

[assistants.elsewhere.backend]
base_url = "{base_url}"
api_key_env = "{key_env}"
"""


def assistants_file(tmp_path: Path, second, monkeypatch) -> Path:
    """The default assistant ("elsewhere") on the second server; "general" on the bot's own."""
    monkeypatch.setenv(KEY_ENV, second.api_key)
    return write_assistants_file(tmp_path, ASSISTANTS.format(base_url=second.base_url, key_env=KEY_ENV))
