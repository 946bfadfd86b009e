"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiosmtpd.controller import Controller

from tests.support.redis_server import free_port


class Inbox:
    """An aiosmtpd handler that keeps every message and refuses one address."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's name
        if address == "nobody@example.com":
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted"


@asynccontextmanager
async def smtp_server() -> AsyncIterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ready_timeout=5)
    # start() and stop() block while the server thread comes up or goes down.
    await asyncio.to_thread(controller.start)
    try:
        yield controller, inbox
    finally:
        await asyncio.to_thread(controller.stop)
