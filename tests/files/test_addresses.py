"""The address rules of file downloads: spellings normalised, internal ranges known, token origins exact."""

from __future__ import annotations

import ipaddress

import aiohttp
import pytest
from yarl import URL

from assist_bot.slack.addresses import FileHosts, GuardedResolver, RefusedAddress, is_internal, literal_ip

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("[::ffff:127.0.0.1]", "127.0.0.1"),
        ("::ffff:7f00:1", "127.0.0.1"),
        ("[2002:a9fe:a9fe::1]", "169.254.169.254"),  # 6to4
        ("[::127.0.0.1]", "127.0.0.1"),  # IPv4-compatible
        ("017700000001", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("8.8.8.8", "8.8.8.8"),
        ("[2001:4860:4860::8888]", "2001:4860:4860::8888"),
    ],
)
def test_every_spelling_of_an_address_is_normalised(spelling, address):
    assert literal_ip(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize("name", ["files.slack.com", "localhost", "deadbeef", "0xg", "1.2.3.4.5"])
def test_host_names_are_not_addresses(name):
    assert literal_ip(name) is None


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("0.0.0.0", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.0.1", True),
        ("100.64.0.1", True),
        ("100.127.255.254", True),
        ("169.254.169.254", True),
        ("224.0.0.1", True),
        ("::1", True),
        ("::127.0.0.2", True),
        ("240.0.0.1", True),
        ("::", True),
        ("fe80::1", True),
        ("fd12::1", True),
        ("::ffff:10.0.0.1", True),
        ("64:ff9b::7f00:1", True),
        ("8.8.8.8", False),
        ("100.128.0.1", False),
        ("2001:4860:4860::8888", False),
    ],
)
def test_internal_ranges(address, internal):
    assert is_internal(ipaddress.ip_address(address)) is internal


@pytest.mark.parametrize(
    ("url", "carries"),
    [
        ("https://files.slack.com/files-pri/T1-F1/a.pdf", True),
        ("https://FILES.slack.com:443/files-pri/T1-F1/a.pdf", True),
        ("https://slack.com/api/files.info", True),
        ("http://files.slack.com/files-pri/T1-F1/a.pdf", False),  # scheme
        ("https://files.slack.com:8443/files-pri/T1-F1/a.pdf", False),  # port
        ("https://files.slack.com.evil.example/a.pdf", False),
        ("https://docs.google.com/document/d/EXAMPLE/edit", False),
    ],
)
def test_the_token_goes_only_to_slacks_origins(url, carries):
    assert FileHosts.for_api("https://slack.com/api/").may_carry_token(URL(url)) is carries


def test_a_loopback_api_url_trusts_its_own_origin_only():
    hosts = FileHosts.for_api("http://127.0.0.1:8080/api/")
    assert hosts.may_carry_token(URL("http://127.0.0.1:8080/files-pri/x"))
    assert hosts.may_carry_token(URL("http://2130706433:8080/files-pri/x"))  # the same origin, spelled otherwise
    assert not hosts.may_carry_token(URL("http://127.0.0.1:8081/files-pri/x"))
    assert not hosts.may_carry_token(URL("https://127.0.0.1:8080/files-pri/x"))
    assert hosts.secure(URL("http://127.0.0.1:9/x")) and not hosts.secure(URL("http://127.0.0.2:9/x"))
    assert not FileHosts.for_api("https://slack.com/api/").secure(URL("http://127.0.0.1/x"))


async def test_the_resolver_refuses_names_of_internal_addresses_when_connecting():
    """The backstop at connect time, for a name that resolves inward after it was checked (rebinding)."""
    resolver = GuardedResolver(FileHosts.for_api("https://slack.com/api/"))
    try:
        with pytest.raises(RefusedAddress):
            await resolver.resolve("localhost", 443)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver)) as session:
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get("http://localhost:9/")
    finally:
        await resolver.close()


async def test_the_resolver_lets_the_configured_host_through():
    resolver = GuardedResolver(FileHosts.for_api("http://localhost:8080/api/"))
    try:
        [result, *_] = await resolver.resolve("localhost", 8080)
        assert is_internal(ipaddress.ip_address(result["host"]))
    finally:
        await resolver.close()
