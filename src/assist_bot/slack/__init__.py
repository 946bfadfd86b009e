"""The Slack side: one module per surface, replies, mrkdwn. Knows nothing of OpenAI."""
