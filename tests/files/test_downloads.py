"""download_slack_file against the fake Slack's file hosting, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.errors import AssistBotError
from assist_bot.slack.addresses import FileHosts
from assist_bot.slack.downloads import DownloadError, download_slack_file

pytestmark = pytest.mark.timeout(30)

MB = 1 << 20
PDF = b"%PDF-1.7 fake report\n" * 10


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


@pytest.fixture
def download(slack, http):
    """download_slack_file wired to the fake, the way the app wires it to Slack."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)

    async def run(file: dict, *, token: str = slack.bot_token, max_bytes: int = 50 * MB):
        return await download_slack_file(
            file,
            client=client,
            http=http,
            token=token,
            max_bytes=max_bytes,
            hosts=FileHosts.for_api(slack.api_url),
            time_limit=15,
        )

    return run


class OtherHost:
    """A second server standing in for a CDN on another host; records the headers it receives."""

    def __init__(self, host: str):
        self.host, self.seen = host, []

    async def __aenter__(self) -> OtherHost:
        async def serve(request: web.Request) -> web.Response:
            self.seen.append(dict(request.headers))
            return web.Response(body=PDF, content_type="application/pdf")

        app = web.Application()
        app.router.add_get("/{tail:.*}", serve)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.2" if self.host == "127.0.0.2" else "127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


def _can_bind(host: str) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


async def test_normal_download(slack, download):
    file = slack.add_file(name="report.pdf", content=PDF, mimetype="application/pdf", filetype="pdf", channel="C1")
    got = await download(file)
    assert (got.name, got.mimetype, got.filetype, got.content, got.size) == (
        "report.pdf",
        "application/pdf",
        "pdf",
        PDF,
        len(PDF),
    )
    assert slack.download_tokens == ["xoxb-test"]


async def test_check_file_info_stub_is_resolved_first(slack, download):
    stub = slack.add_file(
        name="shared.csv", content=b"a,b\n1,2\n", mimetype="text/csv", filetype="csv", file_access="check_file_info"
    )
    assert "url_private_download" not in stub  # only files.info can tell where it lives
    got = await download(stub)
    assert got.content == b"a,b\n1,2\n" and got.name == "shared.csv"
    assert [c.args["file"] for c in slack.calls_to("files.info")] == [stub["id"]]


async def test_unknown_file_in_files_info(slack, download):
    with pytest.raises(DownloadError, match="did not let me read this file"):
        await download({"id": "FNOPE", "file_access": "check_file_info"})


async def test_wrong_token_is_refused_by_slack(slack, download):
    file = slack.add_file(name="report.pdf", content=PDF, mimetype="application/pdf", filetype="pdf")
    with pytest.raises(DownloadError) as err:
        await download(file, token="xoxb-wrong")
    assert err.value.reason == "Slack did not let me read “report.pdf” (is the bot in the channel?)."
    assert isinstance(err.value, AssistBotError) and err.value.name == "report.pdf"
    assert slack.download_tokens == ["xoxb-wrong"]


async def test_redirect_to_another_port_never_carries_the_token(slack, download):
    """The token allow-list compares scheme, host AND port: another port on Slack's host is another origin."""
    file = slack.add_file(name="report.pdf", content=b"not this", mimetype="application/pdf", filetype="pdf")
    async with OtherHost("127.0.0.1") as cdn:
        slack.file_redirect_to(file["id"], cdn.url("/signed/report.pdf?sig=abc"))
        got = await download(file)
    assert got.content == PDF  # the redirect was followed (the configured API host is the trusted one)...
    assert len(cdn.seen) == 1 and "Authorization" not in cdn.seen[0]  # ...without the token
    assert slack.download_tokens == ["xoxb-test"]  # which only Slack's own origin received


class Listener:
    """A bare TCP listener that counts connections: proof that nothing even tried to connect."""

    def __init__(self, host: str):
        self.host, self.connections = host, 0

    async def __aenter__(self) -> Listener:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self._server = await asyncio.start_server(accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        await self._server.wait_closed()


# Every spelling the OS accepts for 127.0.0.2 (a loopback address that is not the configured API host),
# 0.0.0.0 (which reaches this machine), and names and IPv6 forms of loopback.
SPELLINGS_OF_127_0_0_2 = ["2130706434", "0x7f000002", "127.2", "0177.0.0.2", "0x7f.0.0.2", "[::ffff:127.0.0.2]"]
SPELLINGS_OF_THIS_MACHINE = ["0", "0.0.0.0", "localhost", "LocalHost", "[::1]", "[::]"]


@pytest.mark.skipif(not _can_bind("127.0.0.2"), reason="cannot bind 127.0.0.2")
@pytest.mark.parametrize("spelling", SPELLINGS_OF_127_0_0_2)
async def test_redirect_to_an_internal_address_is_refused_however_spelled(slack, download, spelling):
    file = slack.add_file(name="report.pdf", content=PDF, mimetype="application/pdf", filetype="pdf")
    async with Listener("127.0.0.2") as internal:
        slack.file_redirect_to(file["id"], f"https://{spelling}:{internal.port}/latest/meta-data/")
        with pytest.raises(DownloadError, match="somewhere I won't go"):
            await download(file)
        await asyncio.sleep(0)
    assert internal.connections == 0


@pytest.mark.parametrize("spelling", SPELLINGS_OF_THIS_MACHINE)
async def test_redirect_to_this_machine_under_another_name_is_refused(slack, download, spelling):
    file = slack.add_file(name="report.pdf", content=PDF, mimetype="application/pdf", filetype="pdf")
    async with Listener("127.0.0.1") as internal:
        slack.file_redirect_to(file["id"], f"https://{spelling}:{internal.port}/admin")
        with pytest.raises(DownloadError, match="somewhere I won't go"):
            await download(file)
        await asyncio.sleep(0)
    assert internal.connections == 0


@pytest.mark.parametrize(
    "target",
    [
        "https://169.254.169.254/latest/meta-data/",  # link-local: cloud metadata
        "https://100.64.0.1/",  # carrier-grade NAT
        "https://10.0.0.1/",
        "https://192.168.1.1/",
        "https://[fd00::1]/",  # unique local IPv6
        "https://[fe80::1]/",
        "https://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    ],
)
async def test_redirect_to_private_networks_is_refused_before_connecting(slack, download, target):
    file = slack.add_file(name="report.pdf", content=PDF, mimetype="application/pdf", filetype="pdf")
    slack.file_redirect_to(file["id"], target)
    with pytest.raises(DownloadError, match="somewhere I won't go"):
        await download(file)


async def test_a_file_whose_link_is_not_slacks_is_never_fetched(slack, download):
    """A url_private outside Slack's origins (a forged or external file object) is not fetched at all."""
    async with OtherHost("127.0.0.1") as elsewhere:
        forged = {
            "id": "F1",
            "name": "notes.txt",
            "size": 10,
            "url_private": elsewhere.url("/notes.txt"),
        }
        with pytest.raises(DownloadError, match="not a secure Slack link"):
            await download(forged)
    assert elsewhere.seen == [] and slack.download_tokens == []


async def test_redirect_to_plain_http_elsewhere_is_refused(slack, download):
    file = slack.add_file(name="report.pdf", content=PDF, mimetype="application/pdf", filetype="pdf")
    slack.file_redirect_to(file["id"], "http://files.example.invalid/steal")
    with pytest.raises(DownloadError, match="not a secure Slack link"):
        await download(file)


async def test_redirect_loop_gives_up(slack, download):
    file = slack.add_file(name="loop.pdf", content=PDF, mimetype="application/pdf", filetype="pdf")
    slack.file_redirect_to(file["id"], file["url_private_download"])
    with pytest.raises(DownloadError, match="too many times"):
        await download(file)
    assert len(slack.download_tokens) == 4  # the first request and three redirects


async def test_non_https_link_is_refused_before_any_request(download):
    with pytest.raises(DownloadError, match="not a secure Slack link"):
        await download({"id": "F1", "name": "a.pdf", "size": 10, "url_private_download": "http://slack.example/a"})


async def test_declared_oversize_is_refused_before_downloading(slack, download):
    file = slack.add_file(name="big.zip", content=b"x", mimetype="application/zip", filetype="zip", size=73 * MB)
    with pytest.raises(DownloadError) as err:
        await download(file)
    assert err.value.reason == "“big.zip” is 73 MB; the limit is 50 MB."
    assert slack.download_tokens == []


async def test_actual_oversize_stops_reading_at_the_cap(slack, download):
    cap, chunk, total = 1 * MB, 64 * 1024, 1 << 40  # a terabyte: only a capped reader can finish this test
    file = slack.add_file(name="small.txt", content=b"x", mimetype="text/plain", filetype="text", size=100)
    slack.file_slow_body(file["id"], total, chunk=chunk)
    with pytest.raises(DownloadError) as err:
        await download(file, max_bytes=cap)
    assert err.value.reason == "“small.txt” is larger than the 1 MB limit."
    await asyncio.sleep(0.3)  # give the server time to notice the hang-up and stop generating
    # The server paces its writes (yielding after each chunk) and shares our event loop, so what it wrote but
    # we never read is a few chunks (about 5 here); 16 leaves room for a slow machine. Reading to the end, or
    # even a few MB more, would blow far past this.
    assert slack.bytes_sent[file["id"]] < cap + 16 * chunk


async def test_html_login_page_is_not_the_file(slack, download):
    file = slack.add_file(name="report.pdf", content=PDF, mimetype="application/pdf", filetype="pdf")
    slack.file_serve_html(file["id"])
    with pytest.raises(DownloadError, match=r"did not let me read “report.pdf” \(is the bot in the channel\?\)"):
        await download(file)


async def test_an_html_file_is_still_downloadable(slack, download):
    page = b"<!DOCTYPE html><html><body>my page</body></html>"
    file = slack.add_file(name="page.html", content=page, mimetype="text/html", filetype="html")
    assert (await download(file)).content == page


async def test_empty_declared_and_empty_body(slack, download):
    declared = slack.add_file(name="empty.txt", content=b"", mimetype="text/plain", filetype="text")
    with pytest.raises(DownloadError, match="“empty.txt” is empty"):
        await download(declared)
    assert slack.download_tokens == []
    lying = slack.add_file(name="lies.txt", content=b"", mimetype="text/plain", filetype="text", size=10)
    with pytest.raises(DownloadError, match="“lies.txt” is empty"):
        await download(lying)
