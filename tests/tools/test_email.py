"""send_email through a real aiosmtpd server on 127.0.0.1: its own settings (SMTP_*),
and headers no argument can add to."""

from __future__ import annotations

import base64
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from assist_bot.tools import ToolArgumentsError, ToolLoadError, ToolResult
from assist_bot.tools.builtin.email import EmailSettings, send_email
from assist_bot.tools.loading import load_registry, prepare
from tests.fakes.smtp import smtp_server

pytestmark = pytest.mark.timeout(10)


def encoded_word(text: str) -> str:
    """RFC 2047: what mail programs decode, and what Python's email package writes back decoded."""
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


# The attack: a harmless-looking subject that decodes to a second header, an HTML body and a link.
INJECTED = encoded_word(
    "Hi\r\nReply-To: eve@evil.example\r\nContent-Type: text/html\r\n\r\n<a href=https://evil.example>Log in</a>"
)


@pytest.fixture
async def smtp():
    async with smtp_server() as server:
        yield server


@pytest.fixture
def email_tool(smtp, loaded):
    controller, _ = smtp
    return loaded(
        send_email,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(controller.port),
        SMTP_FROM="Assist Bot <bot@example.com>",
        SMTP_STARTTLS="false",
    )


@pytest.fixture
def ctx(make_ctx):
    return make_ctx()


async def test_sends_the_email(smtp, ctx, email_tool):
    _, inbox = smtp
    body = "Hi Ada,\n\nLunch at noon? Café downstairs.\n"
    arguments = {"to": "ada@example.com", "subject": "Lunch on Friday ☕", "body": body}
    assert await email_tool.invoke(arguments, ctx) == ToolResult(True, "Sent to ada@example.com")
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "bot@example.com"
    assert envelope.rcpt_tos == ["ada@example.com"]
    message = message_from_bytes(envelope.original_content, policy=default_policy)
    assert message["To"] == "ada@example.com"
    assert message["From"] == "Assist Bot <bot@example.com>"
    assert message["Subject"] == "Lunch on Friday ☕"
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_content().replace("\r\n", "\n") == body  # SMTP carries CRLF line ends


@pytest.mark.parametrize(
    "subject",
    [
        "Hi\r\nBcc: eve@example.com",
        "Hi\nBcc: eve@example.com",
        "Hi\rthere",
        "a\x00b",
        "Hi\x85Bcc: eve@example.com",  # NEL, a C1 control
        "Hi\u2028Bcc: eve@example.com",  # LINE SEPARATOR
        INJECTED,
        "Re: " + INJECTED,
        "=?utf-8?q?Hi=0D=0ABcc:_eve@example.com?=",
    ],
)
async def test_header_injection_is_refused_before_anything_runs(smtp, ctx, subject, email_tool):
    _, inbox = smtp
    with pytest.raises(ToolArgumentsError, match="^subject: the subject must"):
        email_tool.validate({"to": "ada@example.com", "subject": subject, "body": "x"})  # what the prompt checks
    result = await email_tool.invoke({"to": "ada@example.com", "subject": subject, "body": "x"}, ctx)
    assert not result.ok and result.output.startswith("Error: invalid arguments: subject: the subject must")
    assert inbox.envelopes == []


async def test_an_encoded_word_in_the_address_is_refused(smtp, ctx, email_tool):
    address = encoded_word("eve@evil.example>\r\nBcc: x") + "@example.com"
    result = await email_tool.invoke({"to": address, "subject": "Hi", "body": "x"}, ctx)
    assert not result.ok and "to:" in result.output
    assert smtp[1].envelopes == []


@pytest.mark.parametrize(
    "address",
    [
        "ada",
        "ada@example",
        "ada@@example.com",
        "ada@ex@ample.com",
        "ada lovelace@example.com",
        "ada@example.com\nBcc: eve@example.com",
        "ada@example.com, eve@example.com",
        "<ada@example.com>",
        "ada@.com",
        "ada@example.",
        "@example.com",
        "",
    ],
)
async def test_bad_addresses_are_refused(smtp, ctx, address, email_tool):
    _, inbox = smtp
    result = await email_tool.invoke({"to": address, "subject": "Hi", "body": "x"}, ctx)
    assert not result.ok
    assert result.output.endswith("is not a valid email address")
    assert inbox.envelopes == []


async def test_a_body_cannot_add_headers(smtp, ctx, email_tool):
    body = "Hello\r\n\r\nReply-To: eve@evil.example\r\n.\r\nMAIL FROM:<eve@evil.example>\r\n"
    assert (await email_tool.invoke({"to": "ada@example.com", "subject": "Hi", "body": body}, ctx)).ok
    [envelope] = smtp[1].envelopes
    message = message_from_bytes(envelope.original_content, policy=default_policy)
    assert message["Reply-To"] is None and message.get_content_type() == "text/plain"
    assert envelope.rcpt_tos == ["ada@example.com"]


async def test_refused_recipient(smtp, ctx, email_tool):
    result = await email_tool.invoke({"to": "nobody@example.com", "subject": "Hi", "body": "x"}, ctx)
    assert result == ToolResult(False, "Error: The mail server refused the address nobody@example.com")


def test_settings_read_the_smtp_variables_users_already_set(monkeypatch):
    env = {
        "SMTP_HOST": "mail.example.com",
        "SMTP_PORT": "465",
        "SMTP_USERNAME": "bot",
        "SMTP_PASSWORD": "hunter2",
        "SMTP_FROM": "Bot <bot@example.com>",
        "SMTP_STARTTLS": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    got = EmailSettings(_env_file=None)  # type: ignore[call-arg]
    assert (got.host, got.port, got.username, got.sender, got.starttls) == (
        "mail.example.com",
        465,
        "bot",
        "Bot <bot@example.com>",
        False,
    )
    assert got.password is not None and got.password.get_secret_value() == "hunter2"


def test_email_is_offered_only_with_a_mail_server(make_settings, monkeypatch, declared):
    assert "send_email" not in load_registry(make_settings()).names()
    assert prepare(declared(send_email), make_settings()) is None
    monkeypatch.setenv("SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("SMTP_FROM", "bot@example.com")
    assert "send_email" in load_registry(make_settings()).names()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMTP_HOST": "mail.example.com"}, "set both SMTP_HOST and SMTP_FROM"),
        ({"SMTP_HOST": "h", "SMTP_FROM": "bot@example.com", "SMTP_PORT": "x"}, "SMTP_PORT is invalid"),
        ({"SMTP_HOST": "h", "SMTP_FROM": "Bot\r\nBcc: eve@evil.example <bot@example.com>"}, "SMTP_FROM is invalid"),
    ],
)
def test_half_or_bad_mail_settings_stop_start_up_with_one_line(make_settings, monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ToolLoadError, match=message):
        load_registry(make_settings())


def test_the_operator_may_allow_self_approval(make_settings, monkeypatch, declared):
    monkeypatch.setenv("SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("SMTP_FROM", "bot@example.com")
    assert load_registry(make_settings()).get("send_email").self_approval is False
    monkeypatch.setenv("SMTP_SELF_APPROVAL", "true")
    assert load_registry(make_settings()).get("send_email").self_approval is True


def test_metadata(declared):
    email_tool = declared(send_email)
    assert email_tool.side_effects is True
    assert email_tool.self_approval is False  # another person or an admin approves
    assert email_tool.slash_command == "/email"
    assert email_tool.schema()["required"] == ["to", "subject", "body"]


def test_the_rendered_head_is_checked_as_a_last_line_of_defence():
    # Built the unchecked way (what the tool did before): Python decodes the encoded-word
    # and writes its CR/LF into the head. The check reads the head back and refuses it.
    from email.message import EmailMessage
    from email.policy import SMTP

    from assist_bot.tools import ToolFailure
    from assist_bot.tools.builtin.email import check_rendered

    message = EmailMessage(policy=SMTP)
    for name, value in {"From": "bot@example.com", "To": "ada@example.com", "Subject": INJECTED}.items():
        message[name] = value
    message["Date"], message["Message-ID"] = "Mon, 1 Dec 2026 00:00:00 +0000", "<1@example.com>"
    message.set_content("x")
    with pytest.raises(ToolFailure, match="headers would not come out as written"):
        check_rendered(message, sender="bot@example.com", to="ada@example.com", subject=INJECTED)
