"""`assist-bot chat`, the installed console script driven through its stdin against the
fake OpenAI (and a real SMTP server for the side-effect tool) — with no Slack token set."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.openai import Text, function_outputs, input_texts
from tests.fakes.smtp import smtp_server
from tests.support.assistants_files import write_assistants_file
from tests.support.console import SCRIPT, run_script, script_env

pytestmark = pytest.mark.timeout(60)


def openai_only(openai_fake, **extra):
    """What a newcomer has: an OpenAI key (here, the fake's address too). No Slack settings."""
    return script_env(OPENAI_API_KEY=openai_fake.api_key, OPENAI_BASE_URL=openai_fake.base_url, **extra)


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_a_two_turn_conversation_where_the_second_turn_sees_the_first(openai_fake, tmp_path, store, request):
    def recall(body):
        # What the conversation held before this turn: the first turn, kept at OpenAI's side.
        earlier = input_texts({"input": openai_fake.conversations[body["conversation"]]["items"]})
        return Text.of(f"Earlier you said: {earlier[0]}" if earlier else "I remember nothing.")

    openai_fake.enqueue(Text(["Noted: ", "the code word ", "is ", "pelican."]), recall)
    result = await run_script(
        "chat",
        env=openai_only(openai_fake, REDIS_URL=request.getfixturevalue("redis_url") if store == "redis" else None),
        cwd=tmp_path,
        stdin=b"the code word is pelican\nwhat was the code word?\n",
    )
    assert result.returncode == 0, result.stderr
    first, second = openai_fake.response_requests
    assert first["conversation"] == second["conversation"]  # one conversation for the session
    assert input_texts(second)[-1].endswith("what was the code word?")
    assert "default> Noted: the code word is pelican.\n" in result.stdout
    assert "default> Earlier you said: [" in result.stdout and "] the code word is pelican" in result.stdout
    assert result.stdout.count("you> ") == 3  # two questions, then the end of the input
    assert "Traceback" not in result.stderr
    if store == "redis":  # the thread's conversation is kept in Redis, as the Slack bot keeps its threads'
        from redis.asyncio import Redis

        client = Redis.from_url(request.getfixturevalue("redis_url"))
        try:
            keys = [key async for key in client.scan_iter(match="assist-bot:{TTERMINALCHAT00:*}:conv")]
        finally:
            await client.aclose()
        assert keys


class Session:
    """The chat as a person uses it: read until something shows, then type."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen = ""

    async def until(self, marker: str) -> str:
        assert self.proc.stdout is not None
        async with asyncio.timeout(20):
            while marker not in self.seen:
                chunk = await self.proc.stdout.read(4096)
                if not chunk:
                    raise AssertionError(f"chat ended before {marker!r}:\n{self.seen}")
                self.seen += chunk.decode()
        return self.seen

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")


async def chat_session(env: dict, cwd, *args: str) -> Session:
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        "chat",
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return Session(proc)


async def end(session: Session) -> tuple[int, str]:
    assert session.proc.stdin is not None
    session.proc.stdin.close()
    try:
        out, err = await asyncio.wait_for(session.proc.communicate(), timeout=20)
    finally:
        if session.proc.returncode is None:
            session.proc.kill()
            await session.proc.wait()
    session.seen += out.decode()
    return session.proc.returncode or 0, err.decode()


@pytest.mark.parametrize(("answer", "sent"), [("y", True), ("n", False)])
async def test_a_side_effect_tool_asks_for_consent_on_the_terminal(openai_fake, tmp_path, answer, sent):
    email = {"to": "ada@example.com", "subject": "Lunch", "body": "Noon?"}
    openai_fake.enqueue(Text(["I'll send it."], calls=[("send_email", email)]), Text.of("All done."))
    async with smtp_server() as (controller, inbox):
        env = openai_only(
            openai_fake,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=controller.port,
            SMTP_FROM="bot@example.com",
            SMTP_STARTTLS="false",
        )
        session = await chat_session(env, tmp_path)
        await session.until("you> ")
        session.type("email ada about lunch")
        shown = await session.until("Allow it? [y/N] ")
        assert not inbox.envelopes  # nothing is sent before the person answers
        assert (
            "The assistant wants to run send_email:\n  to: ada@example.com\n  subject: Lunch\n  body: Noon?\n" in shown
        )
        session.type(answer)
        await session.until("All done.")
        code, stderr = await end(session)
    assert code == 0, stderr
    assert len(inbox.envelopes) == (1 if sent else 0)
    (output,) = function_outputs(openai_fake.response_requests[1]).values()
    assert output.startswith("Sent to ada@example.com") if sent else "declined" in output


async def test_assistant_by_name_and_an_unknown_one(openai_fake, tmp_path):
    file = write_assistants_file(
        tmp_path,
        'version = 1\ndefault = "general"\n[assistants.general]\ninstructions = "General."\n'
        '[assistants.poet]\ninstructions = "Answer in verse."\nmodel = "gpt-5.4"\n',
    )
    env = openai_only(openai_fake, ASSIST_BOT_ASSISTANTS=file)
    result = await run_script("chat", "--assistant", "poet", env=env, cwd=tmp_path, stdin=b"hello\n")
    assert result.returncode == 0 and "chat with poet (gpt-5.4)" in result.stdout
    request = openai_fake.response_requests[0]
    assert request["model"] == "gpt-5.4" and request["instructions"] == "Answer in verse."
    unknown = await run_script("chat", "--assistant", "bard", env=env, cwd=tmp_path, stdin=b"")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "assist-bot: no assistant named 'bard': the assistants are general, poet"


async def test_the_answer_streams_as_it_arrives(openai_fake, tmp_path):
    gate = asyncio.Event()  # the fake holds the last chunk until the test opens it
    openai_fake.enqueue(Text(["First part, ", "then the rest."], gate=gate))
    session = await chat_session(openai_only(openai_fake), tmp_path)
    await session.until("you> ")
    session.type("tell me")
    shown = await session.until("First part, ")
    assert "then the rest." not in shown  # the beginning showed before the model finished
    gate.set()
    await session.until("then the rest.\nyou> ")
    code, stderr = await end(session)
    assert code == 0, stderr


async def test_in_a_pseudo_terminal(openai_fake, tmp_path):
    """As a person runs it: stdin, stdout and stderr on a terminal, Ctrl-D to leave."""
    import os
    import pty
    import select

    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT), "chat", env=openai_only(openai_fake), cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    seen = b""

    async def until(marker: bytes) -> None:
        nonlocal seen
        async with asyncio.timeout(20):
            while marker not in seen:
                if select.select([master], [], [], 0)[0]:
                    seen += os.read(master, 4096)
                else:
                    await asyncio.sleep(0.02)

    try:
        await until(b"you> ")
        os.write(master, b"hi there\n")
        await until(b"You said: [")
        await until(b"hi there\r\nyou> ")
        os.write(master, b"\x04")  # Ctrl-D
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(master)
    assert b"Traceback" not in seen
