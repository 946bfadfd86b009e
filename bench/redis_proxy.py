"""A counting TCP proxy between the bot(s) and redis-server, to count round trips.

redis-py writes one command — or one whole pipeline — with a single write on a
connection it holds until the reply is read, so each read the proxy makes from a
client socket is one request burst, i.e. one round trip. (MONITOR lists commands,
not round trips: it cannot tell a pipeline from separate calls.)
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter


def _first_command(data: bytes) -> str:
    """The name of the first command in a RESP request: b"*2\r\n$3\r\nGET\r\n..." -> "GET"."""
    try:
        parts = data.split(b"\r\n", 3)
        return parts[2].decode().upper() if data[:1] == b"*" else "?"
    except (IndexError, UnicodeDecodeError):
        return "?"


class CountingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.round_trips = 0
        self.connections = 0
        self.bytes_up = 0  # bot → Redis
        self.bytes_down = 0  # Redis → bot
        self.by_first_command: Counter[str] = Counter()  # round trips by the first command they carry
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> CountingProxy:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._client, sock=sock, backlog=2048)
        return self

    def reset(self) -> None:
        self.round_trips = 0
        self.connections = 0
        self.by_first_command.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        back = asyncio.create_task(self._pipe(up_reader, writer, count=False))
        self._tasks.add(back)
        back.add_done_callback(self._tasks.discard)
        await self._pipe(reader, up_writer, count=True)
        back.cancel()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool) -> None:
        try:
            while data := await reader.read(65536):
                if count:
                    self.round_trips += 1
                    self.by_first_command[_first_command(data)] += 1
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            self._server = None
