"""A TCP proxy in front of one node's Raft port that can cut, stall or delay each link.

Every node binds its outgoing Raft connections to its own loopback IP, so a proxy tells
peers apart by source address. Rules live in one shared `LinkRules` table keyed by the
directed link (sender, receiver). A proxy never drops or reorders bytes inside a live
connection: TCP does not either, and pysyncobj's framing relies on it. A stalled link
holds bytes (a blackhole the connection may time out on); a cut link resets connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
UPSTREAM_CONNECT_SECONDS = 2.0


class LinkState(NamedTuple):
    """What happens to bytes one node sends another."""

    cut: bool = False
    """Connections carrying this link are reset and new ones refused."""
    stalled: bool = False
    """Bytes are held (not read, not delivered) until the link heals: a blackhole."""
    delay: float = 0.0
    """Seconds added before each chunk is delivered."""


OPEN = LinkState()


class LinkRules:
    """The network's state: a rule per directed link; links without one are open."""

    def __init__(self) -> None:
        self._rules: dict[tuple[str, str], LinkState] = {}
        self._changed = asyncio.Event()
        self._cut_listeners: list[ProxyServer] = []

    def state(self, sender: str | None, receiver: str | None) -> LinkState:
        """The rule for bytes from `sender` to `receiver` (unknown nodes are never faulted)."""
        if sender is None or receiver is None:
            return OPEN
        return self._rules.get((sender, receiver), OPEN)

    def is_cut(self, first: str | None, second: str | None) -> bool:
        """True if the link is cut in either direction (a TCP connection needs both)."""
        return self.state(first, second).cut or self.state(second, first).cut

    def set(self, sender: str, receiver: str, state: LinkState) -> None:
        """Set one directed link's rule."""
        if state == OPEN:
            self._rules.pop((sender, receiver), None)
        else:
            self._rules[(sender, receiver)] = state
        self._notify()

    def cut(self, first: str, second: str) -> None:
        """Cut both directions between two nodes."""
        for sender, receiver in ((first, second), (second, first)):
            self._rules[(sender, receiver)] = LinkState(cut=True)
        self._notify()

    def isolate(self, node: str, others: Iterable[str]) -> None:
        """Cut every link between `node` and `others`."""
        for other in others:
            if other != node:
                self._rules[(node, other)] = LinkState(cut=True)
                self._rules[(other, node)] = LinkState(cut=True)
        self._notify()

    def heal(self, nodes: Iterable[str] | None = None) -> None:
        """Open every link touching `nodes` (every link when None)."""
        if nodes is None:
            self._rules.clear()
        else:
            chosen = set(nodes)
            for link in [link for link in self._rules if chosen & set(link)]:
                del self._rules[link]
        self._notify()

    @property
    def faulted_links(self) -> dict[tuple[str, str], LinkState]:
        """A copy of the current rules."""
        return dict(self._rules)

    async def wait_changed(self, within: float) -> None:
        """Return when any rule changes, or after `within` seconds."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), within)

    def subscribe(self, proxy: ProxyServer) -> None:
        """Let a proxy reset its connections when a link it carries is cut."""
        self._cut_listeners.append(proxy)

    def unsubscribe(self, proxy: ProxyServer) -> None:
        """Forget a stopped proxy."""
        with contextlib.suppress(ValueError):
            self._cut_listeners.remove(proxy)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for proxy in list(self._cut_listeners):
            proxy.reset_cut_connections()


@dataclass(eq=False)
class _Connection:
    """One proxied connection and the peer it comes from."""

    source: str | None
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


class ProxyServer:
    """Listens on a node's advertised Raft address and forwards to its real one."""

    def __init__(
        self,
        node: str,
        listen: tuple[str, int],
        upstream: tuple[str, int],
        rules: LinkRules,
        node_of_ip: dict[str, str],
    ) -> None:
        self.node = node
        self.listen = listen
        self.upstream = upstream
        self.rules = rules
        self.node_of_ip = node_of_ip
        self.connections: set[_Connection] = set()
        self.accepted = 0
        self.refused = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind the listening socket."""
        self._server = await asyncio.start_server(self._handle, self.listen[0], self.listen[1])
        self.rules.subscribe(self)

    async def stop(self) -> None:
        """Stop listening and reset every connection."""
        self.rules.unsubscribe(self)
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.abort()
            for task in connection.tasks:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def reset_cut_connections(self) -> None:
        """Reset the connections of links that are now cut."""
        for connection in list(self.connections):
            if self.rules.is_cut(connection.source, self.node):
                connection.abort()

    async def _handle(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        peer = client.get_extra_info("peername")
        source = self.node_of_ip.get(peer[0]) if peer else None
        if self.rules.is_cut(source, self.node):
            self.refused += 1
            client.transport.abort()
            return
        connection = _Connection(source, client)
        try:
            upstream_reader, upstream = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), UPSTREAM_CONNECT_SECONDS
            )
        except (OSError, TimeoutError):
            client.transport.abort()  # the node is down: the peer sees a reset, as without a proxy
            return
        self.accepted += 1
        connection.upstream = upstream
        self.connections.add(connection)
        forward = asyncio.ensure_future(self._pipe(reader, upstream, source, self.node))
        backward = asyncio.ensure_future(self._pipe(upstream_reader, client, self.node, source))
        connection.tasks = [forward, backward]
        try:
            await asyncio.wait(connection.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            connection.abort()
            for task in connection.tasks:
                task.cancel()
            self.connections.discard(connection)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        sender: str | None,
        receiver: str | None,
    ) -> None:
        """Copy one direction, applying the link's rule to every chunk."""
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                state = self.rules.state(sender, receiver)
                while state.stalled and not state.cut:
                    await self.rules.wait_changed(1.0)  # a blackhole: read nothing, send nothing
                    state = self.rules.state(sender, receiver)
                if state.cut:
                    return
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    return
                received = time.monotonic()
                state = self.rules.state(sender, receiver)
                while state.stalled and not state.cut:
                    await self.rules.wait_changed(1.0)
                    state = self.rules.state(sender, receiver)
                if state.cut:
                    return
                if state.delay > 0:
                    await asyncio.sleep(max(0.0, received + state.delay - time.monotonic()))
                writer.write(data)
                await writer.drain()
