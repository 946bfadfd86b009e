"""Loopback fakes of the Slack and OpenAI servers that the official SDKs talk to unchanged."""
