"""assist-bot benchmark (issue 5): `python -m bench [--quick] [--out FILE]`.

Starts the real bot (`python -m assist_bot run --mode http`) as separate processes
against loopback fakes of Slack and OpenAI and a redis-server of its own, and
measures overhead, concurrency and 1-vs-2 process scaling. Not part of the test
suite (pytest only collects tests/).
"""
