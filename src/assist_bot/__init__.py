"""assist-bot: an OpenAI-powered assistant for Slack."""

__version__ = "0.1.0"
