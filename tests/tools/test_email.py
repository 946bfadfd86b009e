"""send_email through a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from assist_bot.tools import ToolResult
from assist_bot.tools.builtin.email import send_email
from tests.fakes.smtp import smtp_server

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
async def smtp():
    async with smtp_server() as server:
        yield server


@pytest.fixture
def ctx(smtp, make_ctx, make_settings):
    controller, _ = smtp
    return make_ctx(
        make_settings(
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=controller.port,
            SMTP_FROM="Assist Bot <bot@example.com>",
            SMTP_STARTTLS="false",
        )
    )


async def test_sends_the_email(smtp, ctx, declared):
    _, inbox = smtp
    body = "Hi Ada,\n\nLunch at noon? Café downstairs.\n"
    arguments = {"to": "ada@example.com", "subject": "Lunch on Friday", "body": body}
    assert await declared(send_email).invoke(arguments, ctx) == ToolResult(True, "Sent to ada@example.com")
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "bot@example.com"
    assert envelope.rcpt_tos == ["ada@example.com"]
    message = message_from_bytes(envelope.original_content, policy=default_policy)
    assert message["To"] == "ada@example.com"
    assert message["From"] == "Assist Bot <bot@example.com>"
    assert message["Subject"] == "Lunch on Friday"
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_content().replace("\r\n", "\n") == body  # SMTP carries CRLF line ends


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: eve@example.com", "Hi\nBcc: eve@example.com", "Hi\rthere", "a\x00b"])
async def test_header_injection_is_refused(smtp, ctx, subject, declared):
    _, inbox = smtp
    result = await declared(send_email).invoke({"to": "ada@example.com", "subject": subject, "body": "x"}, ctx)
    assert result == ToolResult(False, "Error: The subject must be a single line without control characters")
    assert inbox.envelopes == []


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
async def test_bad_addresses_are_refused(smtp, ctx, address, declared):
    _, inbox = smtp
    result = await declared(send_email).invoke({"to": address, "subject": "Hi", "body": "x"}, ctx)
    assert not result.ok
    assert result.output.endswith("is not a valid email address")
    assert inbox.envelopes == []


async def test_refused_recipient(smtp, ctx, declared):
    result = await declared(send_email).invoke({"to": "nobody@example.com", "subject": "Hi", "body": "x"}, ctx)
    assert result == ToolResult(False, "Error: The mail server refused the address nobody@example.com")


async def test_not_configured(make_ctx, declared):
    result = await declared(send_email).invoke({"to": "ada@example.com", "subject": "Hi", "body": "x"}, make_ctx())
    assert result == ToolResult(False, "Error: Email is not configured (set SMTP_HOST and SMTP_FROM)")


def test_metadata(declared):
    email_tool = declared(send_email)
    assert email_tool.side_effects is True
    assert email_tool.slash_command == "/email"
    assert email_tool.schema()["required"] == ["to", "subject", "body"]
