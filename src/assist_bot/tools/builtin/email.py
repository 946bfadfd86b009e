"""Send a plain-text email over SMTP (a side effect: the engine asks before running it)."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib

from assist_bot.settings import Settings
from assist_bot.tools.errors import ToolFailure
from assist_bot.tools.registry import ToolContext, tool

# One @, a dotted domain, nothing that could smuggle a second address or a header:
# no spaces, no newlines, no commas, quotes or angle brackets.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # every control character but tab
_MAX_SUBJECT = 250
_SMTP_TIMEOUT = 20.0
_IMPLICIT_TLS_PORT = 465  # SMTPS: TLS from the first byte, no STARTTLS


@tool(side_effects=True, slash_command="/email")
async def send_email(to: str, subject: str, body: str, ctx: ToolContext) -> str:
    """Send a plain-text email.

    Args:
        to: The recipient's email address, e.g. "ada@example.com".
        subject: The subject line (one line).
        body: The plain-text message.
    """
    settings = ctx.settings
    if not settings.smtp_host or not settings.smtp_from:
        raise ToolFailure("Email is not configured (set SMTP_HOST and SMTP_FROM)")
    to = to.strip()
    check_address(to)
    check_subject(subject)
    message = _message(settings.smtp_from, to, subject, body)
    use_tls, start_tls = _tls_options(settings)
    try:
        await aiosmtplib.send(
            message,
            sender=parseaddr(settings.smtp_from)[1],
            recipients=[to],
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            use_tls=use_tls,
            start_tls=start_tls,
            timeout=_SMTP_TIMEOUT,
        )
    except aiosmtplib.SMTPRecipientsRefused:
        raise ToolFailure(f"The mail server refused the address {to}") from None
    except aiosmtplib.SMTPException as exc:
        raise ToolFailure(f"The email could not be sent: {type(exc).__name__}: {exc}") from None
    return f"Sent to {to}"


def check_address(address: str) -> None:
    if len(address) > 254 or not _ADDRESS.match(address):
        raise ToolFailure(f"{address!r} is not a valid email address")


def check_subject(subject: str) -> None:
    # A newline in a header would let the caller add headers (Bcc: …) of their own.
    if _CONTROL.search(subject):
        raise ToolFailure("The subject must be a single line without control characters")
    if len(subject) > _MAX_SUBJECT:
        raise ToolFailure(f"The subject is longer than {_MAX_SUBJECT} characters")


def _message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    # Mail without a Message-ID is more often taken for spam.
    # An explicit domain also spares make_msgid a blocking getfqdn() DNS lookup.
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or "assist-bot.invalid")
    message.set_content(body)
    return message


def _tls_options(settings: Settings) -> tuple[bool, bool]:
    """(use_tls, start_tls) for aiosmtplib."""
    if not settings.smtp_starttls:  # a local relay without TLS
        return False, False
    if settings.smtp_port == _IMPLICIT_TLS_PORT:
        return True, False
    return False, True  # required, never silently plain text
