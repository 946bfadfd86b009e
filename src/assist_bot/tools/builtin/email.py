"""Send a plain-text email over SMTP (a side effect: the engine asks before running it).

Every header is checked twice: the arguments before anyone is asked to approve them
(so the consent prompt shows exactly what would be sent), and the rendered message
before it leaves (so no decoded form of a field can add a header of its own).
"""

from __future__ import annotations

import email.policy
import re
import unicodedata
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Annotated

import aiosmtplib
from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from assist_bot.tools.errors import ToolFailure
from assist_bot.tools.registry import ToolContext, tool
from assist_bot.tools.settings import ToolSettings

# One @, a dotted domain, nothing that could smuggle a second address or a header:
# no spaces, no newlines, no commas, quotes or angle brackets.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_MAX_SUBJECT = 250
_SMTP_TIMEOUT = 20.0
_IMPLICIT_TLS_PORT = 465  # SMTPS: TLS from the first byte, no STARTTLS
# The headers a message of ours has, each once; anything else in the rendered head is an injection.
_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding")


def _has_control(text: str) -> bool:
    # Cc: C0/C1 controls (CR, LF, NUL, NEL…); Zl/Zp: U+2028/U+2029, which some readers break lines on.
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text)


def check_header_text(value: str, *, what: str) -> str:
    """Refuse text that is, or decodes to, more than one plain header line.

    An RFC 2047 encoded-word (`=?utf-8?b?…?=`) looks harmless but Python's email
    package decodes it and may write the decoded CR/LF into the head (CVE-2024-6923),
    so encoded-words are refused outright, and the decoded form is checked as well."""
    if "=?" in value:
        raise ValueError(f"the {what} must not contain '=?' (mail programs decode it into other text)")
    try:
        decoded = str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        raise ValueError(f"the {what} cannot be read as plain text") from None
    if _has_control(value) or _has_control(decoded):
        raise ValueError(f"the {what} must be a single line without control characters")
    return value


def check_address(address: str) -> str:
    address = address.strip()
    if len(address) > 254 or not _ADDRESS.match(address):
        raise ValueError(f"{address!r} is not a valid email address")
    return check_header_text(address, what="address")


def check_subject(subject: str) -> str:
    check_header_text(subject, what="subject")
    if len(subject) > _MAX_SUBJECT:
        raise ValueError(f"the subject is longer than {_MAX_SUBJECT} characters")
    return subject


# Validated as arguments: a bad address or subject is refused before the consent prompt.
Address = Annotated[str, AfterValidator(check_address)]
Subject = Annotated[str, AfterValidator(check_subject)]


class EmailSettings(ToolSettings):
    """The mail server, from the SMTP_* variables (the names users already set)."""

    model_config = SettingsConfigDict(env_prefix="SMTP_")

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    sender: str | None = Field(default=None, validation_alias="SMTP_FROM")
    starttls: bool = True
    # May the person who asked approve their own email? Off: another person or an admin must.
    self_approval: bool = False

    @field_validator("sender")
    @classmethod
    def _one_plain_sender(cls, value: str | None) -> str | None:
        if value:
            check_header_text(value, what="sender")
            check_address(parseaddr(value)[1])
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> EmailSettings:
        if bool(self.host) != bool(self.sender):
            raise ValueError("set both SMTP_HOST and SMTP_FROM (or neither, to turn email off)")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.host and self.sender)


def _configured(settings: EmailSettings) -> bool:
    return settings.configured


# Offered only with a mail server; a person must approve, and (unless SMTP_SELF_APPROVAL)
# not the one who asked: the mail goes out from the company's address.
@tool(side_effects=True, slash_command="/email", settings=EmailSettings, enabled=_configured, self_approval=False)
async def send_email(to: Address, subject: Subject, body: str, ctx: ToolContext[EmailSettings]) -> str:
    """Send a plain-text email.

    Args:
        to: The recipient's email address, e.g. "ada@example.com".
        subject: The subject line (one line).
        body: The plain-text message.
    """
    settings = ctx.settings
    if settings is None or not settings.host or not settings.sender:
        raise ToolFailure("Email is not configured (set SMTP_HOST and SMTP_FROM)")
    message = build_message(settings.sender, to, subject, body)
    use_tls, start_tls = _tls_options(settings)
    try:
        await aiosmtplib.send(
            message,
            sender=parseaddr(settings.sender)[1],
            recipients=[to],
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            use_tls=use_tls,
            start_tls=start_tls,
            timeout=_SMTP_TIMEOUT,
        )
    except aiosmtplib.SMTPRecipientsRefused:
        raise ToolFailure(f"The mail server refused the address {to}") from None
    except aiosmtplib.SMTPException as exc:
        raise ToolFailure(f"The email could not be sent: {type(exc).__name__}: {exc}") from None
    return f"Sent to {to}"


def build_message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """The message, checked as it will be written on the wire; ToolFailure if anything moved."""
    try:
        check_address(to)
        check_subject(subject)
        check_header_text(sender, what="sender")
    except ValueError as exc:
        raise ToolFailure(str(exc)[:1].upper() + str(exc)[1:]) from None
    # policy.SMTP: CRLF line ends and RFC-conformant folding, as the message is sent.
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    # Mail without a Message-ID is more often taken for spam.
    # An explicit domain also spares make_msgid a blocking getfqdn() DNS lookup.
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or "assist-bot.invalid")
    message.set_content(body)
    check_rendered(message, sender=sender, to=to, subject=subject)
    return message


def check_rendered(message: EmailMessage, *, sender: str, to: str, subject: str) -> None:
    """Read the rendered head back as a mail program would: the same headers, the same values."""
    head = message.as_bytes().partition(b"\r\n\r\n")[0].decode("ascii", "replace")
    names = [line.partition(":")[0] for line in head.split("\r\n") if line and not line[0].isspace()]
    parsed = message_from_bytes(message.as_bytes(), policy=email.policy.default)
    intact = (
        sorted(names) == sorted(_HEADERS)
        and (str(parsed["From"]), str(parsed["To"]), str(parsed["Subject"])) == (sender, to, subject)
        and parsed.get_content_type() == "text/plain"
        and not parsed.is_multipart()
    )
    if not intact:
        raise ToolFailure("The email was not sent: its headers would not come out as written")


def _tls_options(settings: EmailSettings) -> tuple[bool, bool]:
    """(use_tls, start_tls) for aiosmtplib."""
    if not settings.starttls:  # a local relay without TLS
        return False, False
    if settings.port == _IMPLICIT_TLS_PORT:
        return True, False
    return False, True  # required, never silently plain text
