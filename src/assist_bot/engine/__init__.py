"""The engine: one turn on the OpenAI Responses API. Knows nothing of Slack."""
