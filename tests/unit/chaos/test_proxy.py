"""The Raft proxy: links pass, are cut, stalled or delayed per direction, by source address."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from vecstore.chaos.failpoint.proxy import LinkRules, LinkState, ProxyServer
from vecstore.launcher.processes import free_ports

PEER_IP = "127.77.31.2"
NODE_IP = "127.77.31.3"


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[LinkRules, int]]:
    """An echo server (the node "n") behind a proxy; "p" connects from PEER_IP."""
    upstream_port, proxy_port = free_ports(2, host=NODE_IP)
    server = await asyncio.start_server(echo, NODE_IP, upstream_port)
    rules = LinkRules()
    proxy = ProxyServer("n", (NODE_IP, proxy_port), (NODE_IP, upstream_port), rules, {PEER_IP: "p"})
    await proxy.start()
    try:
        yield rules, proxy_port
    finally:
        await proxy.stop()
        server.close()
        await server.wait_closed()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(NODE_IP, port, local_addr=(PEER_IP, 0))


async def round_trip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, within: float = 2.0
) -> bytes:
    writer.write(b"ping")
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(4), within)


async def test_an_open_link_passes_and_a_cut_one_resets_and_refuses(proxied: tuple[LinkRules, int]) -> None:
    rules, port = proxied
    reader, writer = await connect(port)
    assert await round_trip(reader, writer) == b"ping"
    rules.cut("p", "n")
    assert await asyncio.wait_for(reader.read(), 2) == b""  # reset
    writer.close()
    reader, writer = await connect(port)
    assert await asyncio.wait_for(reader.read(), 2) == b""  # refused
    writer.close()
    rules.heal()
    reader, writer = await connect(port)
    assert await round_trip(reader, writer) == b"ping"
    writer.close()


async def test_a_blackhole_holds_bytes_until_healed_and_loses_none(proxied: tuple[LinkRules, int]) -> None:
    rules, port = proxied
    reader, writer = await connect(port)
    rules.set("n", "p", LinkState(stalled=True))  # only the answers are held
    with pytest.raises(TimeoutError):
        await round_trip(reader, writer, within=0.5)
    rules.heal(["n"])
    assert await asyncio.wait_for(reader.readexactly(4), 2) == b"ping"
    writer.close()


async def test_a_delay_slows_one_direction(proxied: tuple[LinkRules, int]) -> None:
    rules, port = proxied
    reader, writer = await connect(port)
    rules.set("p", "n", LinkState(delay=0.3))
    started = time.monotonic()
    assert await round_trip(reader, writer) == b"ping"
    assert time.monotonic() - started >= 0.3
    writer.close()
