"""Async HTTP client of one shard's nodes: follows the leader, retries what is retriable.

Used by routers, ingest workers, the admin CLI and tests. Writes go to the leader (found
from "not leader" answers and cached); eventual reads rotate over replicas.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from vecstore.cluster.codec import encode_command
from vecstore.cluster.commands import Command
from vecstore.cluster.credentials import NO_ACCESS, NodeAccess
from vecstore.cluster.errors import InvalidRequest, Timeout, Unavailable, VecStoreError, error_from_dict
from vecstore.transport.rpc import RpcChannel, RpcUnsupported, new_request, tls_complaint
from vecstore.transport.wire import JSON, MSGPACK, decode_body, encode_body

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 0.05
RETRY_MAX_SECONDS = 1.0
CONNECT_SECONDS = 3.0
LARGE_BODY_BYTES = 256 * 1024


class NodeClient:
    """Talks to the nodes of one shard (HTTP addresses host:port), presenting `access`
    (the cluster's node token) on every request."""

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        session: aiohttp.ClientSession | None = None,
        deadline_seconds: float = 15.0,
        request_seconds: float = 10.0,
        on_retry: Callable[[], None] | None = None,
        rpc: bool = True,
        access: NodeAccess = NO_ACCESS,
    ) -> None:
        if not addresses:
            raise ValueError("a shard needs at least one node address")
        self.addresses = list(addresses)
        self.leader: str | None = None
        self.deadline_seconds = deadline_seconds
        self._request_seconds = request_seconds
        self._request_timeout = aiohttp.ClientTimeout(total=request_seconds)
        self._rpc = rpc
        self._channels: dict[str, RpcChannel] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self._http_only: set[str] = set()
        self._session = session
        self._owns_session = session is None
        self._rotation = itertools.cycle(range(len(self.addresses)))
        self._on_retry = on_retry
        self._auth_headers = access.headers()
        self._access = access
        self._tls: ssl.SSLContext | bool = access.tls if access.tls is not None else True
        self.applied_index = 0
        """The highest Raft index a write through this client was acknowledged at; eventual
        reads ask the replica to have applied it (read-your-writes)."""

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the RPC connections, and the session if this client created it."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> NodeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- transport ---------------------------------------------------------------------

    async def call(
        self, address: str, method: str, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> dict[str, Any]:
        """One request to one node (over its RPC connection, else HTTP); raises the node's
        error as a VecStoreError."""
        if self._rpc and address not in self._http_only:
            request_id, frame = new_request(method, path, raw if raw is not None else body)
            try:
                channel = await self._channel(address)
            except RpcUnsupported as err:
                log.info("no RPC endpoint (%s); using HTTP", err)
                self._http_only.add(address)
            else:
                answer: dict[str, Any] = await channel.exchange(request_id, frame, self._request_seconds)
                return answer
        return await self._http_call(address, method, path, body, raw)

    async def _channel(self, address: str) -> RpcChannel:
        channel = self._channels.get(address)
        if channel is not None and not channel.closed:
            return channel
        async with self._connecting.setdefault(address, asyncio.Lock()):
            channel = self._channels.get(address)
            if channel is None or channel.closed:
                connect_seconds = min(CONNECT_SECONDS, self._request_seconds)
                channel = await RpcChannel.open(
                    await self._http(),
                    self._access.url(address),
                    connect_seconds,
                    self._auth_headers,
                    self._tls,
                )
                self._channels[address] = channel
            return channel

    async def _http_call(
        self, address: str, method: str, path: str, body: Any, raw: bytes | None
    ) -> dict[str, Any]:
        session = await self._http()
        headers = {"Accept": MSGPACK, **self._auth_headers}
        if raw is None and body is not None:
            try:
                raw = encode_body(body, MSGPACK)
            except OverflowError:
                raise InvalidRequest("the request has an integer outside -2**63..2**64-1") from None
        if raw is not None:
            headers["Content-Type"] = MSGPACK
        data: bytes | io.BytesIO | None = raw
        if raw is not None and len(raw) > LARGE_BODY_BYTES:
            data = io.BytesIO(raw)  # aiohttp streams file-likes instead of copying
        try:
            async with session.request(
                method,
                f"{self._access.url(address)}{path}",
                data=data,
                headers=headers,
                timeout=self._request_timeout,
                ssl=self._tls,
            ) as response:
                payload = decode_body(await response.read(), response.content_type or JSON)
                if response.status >= 400:
                    raise error_from_dict(payload)
                return payload
        except aiohttp.ClientSSLError as err:
            raise Unavailable(tls_complaint(f"node {address}", err)) from None
        except (aiohttp.ClientError, ConnectionError) as err:
            raise Unavailable(f"node {address} is unreachable: {err}") from None
        except TimeoutError:
            raise Timeout(f"node {address} did not answer in time") from None

    async def request(self, pick: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One logical request: retriable errors are retried until the deadline, following
        leader hints. `pick` is "leader" (writes, leader/strong reads) or "any"."""
        deadline = time.monotonic() + self.deadline_seconds
        delay = RETRY_BASE_SECONDS
        last_error: VecStoreError | None = None
        while time.monotonic() < deadline:
            address = self._target(pick)
            try:
                return await self.call(address, method, path, **kwargs)
            except VecStoreError as err:
                if not err.retriable:
                    raise
                last_error = err
                self._learn(address, err)
                if self._on_retry is not None:
                    self._on_retry()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
        raise last_error or Unavailable("no node answered before the deadline")

    def _target(self, pick: str) -> str:
        if pick == "leader" and self.leader is not None:
            return self.leader
        return self.addresses[next(self._rotation)]

    def _learn(self, address: str, err: VecStoreError) -> None:
        hint = getattr(err, "leader", None)
        if hint:
            self.leader = str(hint)
            if self.leader not in self.addresses:
                self.addresses.append(self.leader)
                self._rotation = itertools.cycle(range(len(self.addresses)))
        elif self.leader == address:
            self.leader = None

    # ---- operations --------------------------------------------------------------------

    async def apply(self, command: Command) -> dict[str, Any]:
        """Replicate a command through the shard's leader; returns its result.

        Retrying after a timeout is safe for every VecStore command: upserts, deletes and
        payload changes converge to the same state, and ingest batches are offset-fenced.
        """
        answer = await self.request("leader", "POST", "/v1/apply", raw=encode_command(command))
        applied = answer.get("applied_index")
        if isinstance(applied, int) and applied > self.applied_index:
            self.applied_index = applied
        return answer

    async def dry_run(self, command: Command) -> dict[str, Any]:
        """Ask the leader whether a payload change would apply, changing nothing."""
        return await self.request("leader", "POST", "/v1/dry-run", raw=encode_command(command))

    def caught_up(self) -> dict[str, Any]:
        """The body of a read that must see every write this client saw acknowledged."""
        return {"min_applied": self.applied_index} if self.applied_index else {}

    async def read(
        self, path: str, body: dict[str, Any], consistency: str = "eventual", min_applied: int | None = None
    ) -> dict[str, Any]:
        """A read request at a consistency level (leader-bound unless eventual). An eventual
        read sees every write this client saw acknowledged (read-your-writes), and the log up
        to `min_applied` if given: the replica waits until it has applied that far, or
        another one is asked."""
        if consistency == "eventual":
            wanted = max(self.applied_index, min_applied or 0)
            if wanted:
                body = {**body, "min_applied": wanted}
            return await self.request("any", "POST", path, body={**body, "consistency": consistency})
        return await self.request("leader", "POST", path, body={**body, "consistency": consistency})

    async def search(
        self, collection: str, vectors: list[list[float]], k: int, **options: Any
    ) -> list[list[dict[str, Any]]]:
        """Batch search; options as the node API (filter, ef, exact, with_payload, ...)."""
        consistency = options.pop("consistency", "eventual")
        body = {"vectors": vectors, "k": k, **options}
        answer = await self.read(f"/v1/collections/{collection}/search", body, consistency)
        results: list[list[dict[str, Any]]] = answer["results"]
        return results

    async def count(self, collection: str, consistency: str = "eventual", **options: Any) -> int:
        """Number of points (matching `filter` if given)."""
        answer = await self.read(f"/v1/collections/{collection}/points/count", options, consistency)
        return int(answer["count"])

    async def get(
        self, collection: str, ids: list[Any], consistency: str = "eventual", **options: Any
    ) -> list[dict[str, Any]]:
        """Points by id."""
        body = {"ids": ids, **options}
        answer = await self.read(f"/v1/collections/{collection}/points/get", body, consistency)
        points: list[dict[str, Any]] = answer["points"]
        return points

    async def status(self, address: str) -> dict[str, Any]:
        """The status document of one node."""
        return await self.call(address, "GET", "/v1/status")

    async def find_leader(self) -> str:
        """Ask every node until one says it leads; raises Unavailable if none does in time."""
        deadline = time.monotonic() + self.deadline_seconds
        unanswered: VecStoreError | None = None
        while time.monotonic() < deadline:
            for address in list(self.addresses):
                try:
                    status = await self.status(address)
                except VecStoreError as err:
                    unanswered = err
                    continue
                if status.get("role") == "leader":
                    self.leader = address
                    return address
            await asyncio.sleep(0.1)
        # a node that never answered says why (a refused TLS certificate, a wrong token)
        why = f" (last error: {unanswered.message})" if unanswered is not None else ""
        raise Unavailable(f"no leader was elected before the deadline{why}")

    async def change_membership(self, action: str, raft_address: str) -> None:
        """Add or remove a member (through the leader)."""
        body = {"action": action, "raft_address": raft_address}
        await self.request("leader", "POST", "/v1/membership", body=body)
