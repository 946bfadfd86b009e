"""The three ways a thread keeps its state (ASSIST_BOT_STATE): scenario tests run in each."""

from __future__ import annotations

import pytest

STATE_MODES = ("conversation", "response_chain", "local")

# Overrides the `state_mode` fixture of tests/conftest.py, which configures the fake and the bot.
every_state_mode = pytest.mark.parametrize("state_mode", STATE_MODES)
