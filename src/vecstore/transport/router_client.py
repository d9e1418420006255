"""Async client of a router's native `/v1` API: collections, points, search, status.

Used by the admin CLI, the demo and scripts. Bodies travel as msgpack; retriable errors
(no leader yet, a shard timing out) are retried until a deadline. It never talks to nodes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from vecstore.cluster.errors import Timeout, Unavailable, Unreachable, VecStoreError, error_from_dict
from vecstore.cluster.tls import client_context
from vecstore.transport.rpc import RpcChannel, RpcUnsupported, tls_complaint
from vecstore.transport.wire import JSON, MSGPACK, decode_body, encode_body

DEFAULT_ROUTER = "http://127.0.0.1:6333"
RETRY_BASE_SECONDS = 0.1
RETRY_MAX_SECONDS = 2.0


def normalize_router_url(url: str) -> str:
    """`host:port` or `http(s)://host:port[/]` -> `http(s)://host:port` (no trailing slash)."""
    url = url.strip().rstrip("/")
    if not url:
        raise ValueError("the router URL is empty")
    if "://" not in url:
        url = f"http://{url}"
    return url


def point_body(point_id: object, vector: Sequence[float], payload: dict[str, Any] | None) -> dict[str, Any]:
    """One point of an upsert request."""
    body: dict[str, Any] = {"id": point_id, "vector": list(vector)}
    if payload is not None:
        body["payload"] = payload
    return body


class RouterClient:
    """Talks to one router (any router of a cluster answers the same)."""

    def __init__(
        self,
        url: str = DEFAULT_ROUTER,
        *,
        api_key: str | None = None,
        deadline_seconds: float = 30.0,
        request_seconds: float = 60.0,
        connect_seconds: float = 3.0,
        session: aiohttp.ClientSession | None = None,
        rpc: bool = True,
        ca_file: str | Path | None = None,
    ) -> None:
        self.url = normalize_router_url(url)
        self._tls = None if ca_file is None else client_context(ca_file)
        """Verifies an https router against this CA (else the system's trusted CAs); TlsError
        if the file cannot be read."""
        self.api_key = api_key
        self.deadline_seconds = deadline_seconds
        self.connect_seconds = connect_seconds
        self._request_seconds = request_seconds
        self._timeout = aiohttp.ClientTimeout(total=request_seconds)
        self._rpc = rpc
        self._channel: RpcChannel | None = None
        self._connecting = asyncio.Lock()
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> RouterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the RPC connection, and the HTTP session if this client opened it."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    # ---- transport ---------------------------------------------------------------------

    def _headers(self, with_body: bool) -> dict[str, str]:
        headers = {"Accept": MSGPACK}
        if with_body:
            headers["Content-Type"] = MSGPACK
        if self.api_key:
            headers["api-key"] = self.api_key
        return headers

    async def _exchange(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._tls) if self._tls is not None else None
            self._session = aiohttp.ClientSession(connector=connector)
        if self._rpc:
            try:
                channel = await self._open_channel()
            except RpcUnsupported:
                self._rpc = False  # a router without /v1/rpc, or a proxy refusing upgrades
            else:
                answer: dict[str, Any] = await channel.call(method, path, body, self._request_seconds)
                return answer
        return await self._http_exchange(method, path, body)

    async def _http_exchange(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """One plain HTTP request (the probes, and every call without RPC)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._tls) if self._tls is not None else None
            self._session = aiohttp.ClientSession(connector=connector)
        data = None if body is None else encode_body(body, MSGPACK)
        async with self._session.request(
            method,
            f"{self.url}{path}",
            data=data,
            headers=self._headers(body is not None),
            timeout=self._timeout,
        ) as response:
            raw = await response.read()
            content_type = response.content_type or JSON
            if content_type not in (JSON, MSGPACK):
                raise VecStoreError(
                    f"{self.url} answered {response.status} with {content_type}, not a VecStore "
                    "response: is this the router's address?"
                )
            answer = decode_body(raw, content_type)
            if response.status >= 400:
                raise error_from_dict(answer)
            return answer

    async def _open_channel(self) -> RpcChannel:
        channel = self._channel
        if channel is not None and not channel.closed:
            return channel
        async with self._connecting:
            if self._channel is None or self._channel.closed:
                assert self._session is not None
                headers = {"api-key": self.api_key} if self.api_key else None
                self._channel = await RpcChannel.open(
                    self._session, self.url, min(self.connect_seconds, self._request_seconds), headers
                )
            return self._channel

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request (over the router's RPC connection, else HTTP); the router's error
        body becomes a VecStoreError."""
        try:
            return await self._exchange(method, path, body)
        except aiohttp.ClientSSLError as err:
            raise Unavailable(tls_complaint(f"router at {self.url}", err)) from None
        except (aiohttp.ClientError, ConnectionError) as err:
            raise Unavailable(f"router at {self.url} is unreachable: {err}") from None
        except TimeoutError:
            raise Timeout(f"router at {self.url} did not answer in time") from None

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A request retried on retriable errors until the deadline.

        A router that refuses connections is retried only for `connect_seconds` (it is
        down, or the address is wrong); one that answers "unavailable" (a shard without a
        leader) until the deadline. Retrying is safe for every native call: reads have no
        effect, and upserts, creates and drops converge when repeated.
        """
        started = time.monotonic()
        delay = RETRY_BASE_SECONDS
        while True:
            budget = self.deadline_seconds
            try:
                return await self._exchange(method, path, body)
            except aiohttp.ClientSSLError as err:  # a certificate is not trusted: retrying will not help
                raise Unavailable(tls_complaint(f"router at {self.url}", err)) from None
            except aiohttp.ClientConnectorError as err:
                error: VecStoreError = Unavailable(f"router at {self.url} is unreachable: {err}")
                budget = min(budget, self.connect_seconds)
            except Unreachable as err:
                error = err
                budget = min(budget, self.connect_seconds)
            except (aiohttp.ClientError, ConnectionError) as err:
                error = Unavailable(f"router at {self.url} is unreachable: {err}")
            except TimeoutError:
                error = Timeout(f"router at {self.url} did not answer in time")
            except VecStoreError as err:
                if not err.retriable:
                    raise
                error = err
            if time.monotonic() + delay - started > budget:
                raise error
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    # ---- cluster -----------------------------------------------------------------------

    async def ready(self) -> bool:
        """True when the router answers /readyz with 200 (every shard has a leader). Asked
        over plain HTTP: probes are not operations of the RPC channel."""
        try:
            await self._http_exchange("GET", "/readyz", None)
        except (VecStoreError, aiohttp.ClientError, ConnectionError, TimeoutError):
            return False
        return True

    async def wait_ready(self, seconds: float) -> None:
        """Wait until the router is ready, or raise Unavailable after `seconds`."""
        deadline = time.monotonic() + seconds
        while not await self.ready():
            if time.monotonic() > deadline:
                raise Unavailable(f"router at {self.url} was not ready after {seconds:.0f}s")
            await asyncio.sleep(0.25)

    async def status(self) -> list[dict[str, Any]]:
        """Every node's status document (or an `unreachable` row), shard by shard."""
        answer = await self.request("GET", "/v1/status")
        nodes: list[dict[str, Any]] = answer["nodes"]
        return nodes

    # ---- collections -------------------------------------------------------------------

    async def list_collections(self) -> list[dict[str, Any]]:
        """Every collection's schema, by name."""
        answer = await self.request("GET", "/v1/collections")
        schemas: list[dict[str, Any]] = answer["collections"]
        return schemas

    async def create_collection(self, schema: dict[str, Any]) -> bool:
        """Create a collection from its schema (`name` included); False if it already existed
        with the same schema. A different schema raises CollectionConflict."""
        body = {k: v for k, v in schema.items() if k != "name"}
        answer = await self.request("PUT", f"/v1/collections/{schema['name']}", body)
        return bool(answer["created"])

    async def collection_info(self, name: str) -> dict[str, Any]:
        """Schema plus points, segments, indexing lag and tombstones summed over shards."""
        answer = await self.request("GET", f"/v1/collections/{name}")
        answer.pop("status", None)
        return answer

    async def drop_collection(self, name: str) -> bool:
        """Drop a collection everywhere; False if it did not exist."""
        answer = await self.request("DELETE", f"/v1/collections/{name}")
        return bool(answer["dropped"])

    # ---- points ------------------------------------------------------------------------

    async def upsert(self, collection: str, points: list[dict[str, Any]]) -> int:
        """Insert or replace points ({"id", "vector", "payload"}); returns how many."""
        answer = await self.request("PUT", f"/v1/collections/{collection}/points", {"points": points})
        return int(answer.get("upserted", len(points)))

    async def scroll(
        self,
        collection: str,
        *,
        offset: object = None,
        limit: int = 1000,
        with_vector: bool = False,
        with_payload: bool = True,
        filter: dict[str, Any] | None = None,
        consistency: str = "eventual",
    ) -> tuple[list[dict[str, Any]], Any]:
        """A page of points in id order and the offset of the next page (None at the end)."""
        body: dict[str, Any] = {
            "offset": offset,
            "limit": limit,
            "with_vector": with_vector,
            "with_payload": with_payload,
            "consistency": consistency,
        }
        if filter is not None:
            body["filter"] = filter
        answer = await self.request("POST", f"/v1/collections/{collection}/points/scroll", body)
        points: list[dict[str, Any]] = answer["points"]
        return points, answer["next_offset"]

    async def count(
        self,
        collection: str,
        filter: dict[str, Any] | None = None,
        consistency: str = "eventual",
    ) -> int:
        """How many points (matching `filter`)."""
        body: dict[str, Any] = {"consistency": consistency}
        if filter is not None:
            body["filter"] = filter
        answer = await self.request("POST", f"/v1/collections/{collection}/points/count", body)
        return int(answer["count"])

    async def explain(
        self,
        collection: str,
        *,
        k: int = 10,
        filter: dict[str, Any] | None = None,
        exact: bool = False,
        using: str | None = None,
    ) -> list[dict[str, Any]]:
        """Each shard's plan for a search: {"shard", "plan", "live_points", "estimated_matches", ...}."""
        body: dict[str, Any] = {"k": k, "exact": exact}
        if filter is not None:
            body["filter"] = filter
        if using is not None:
            body["using"] = using
        answer = await self.request("POST", f"/v1/collections/{collection}/explain", body)
        plans: list[dict[str, Any]] = answer["plans"]
        return plans

    async def search(
        self,
        collection: str,
        vectors: list[list[float]],
        *,
        k: int = 10,
        filter: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vector: bool = False,
        consistency: str = "eventual",
        ef: int | None = None,
        exact: bool = False,
        using: str | None = None,
    ) -> list[list[dict[str, Any]]]:
        """The top-k hits ({"id", "score", "payload"}) of each query vector, best first
        (`using`: the named vector to search)."""
        body: dict[str, Any] = {
            "vectors": vectors,
            "k": k,
            "with_payload": with_payload,
            "with_vector": with_vector,
            "consistency": consistency,
            "exact": exact,
        }
        if filter is not None:
            body["filter"] = filter
        if ef is not None:
            body["ef"] = ef
        if using is not None:
            body["using"] = using
        answer = await self.request("POST", f"/v1/collections/{collection}/search", body)
        results: list[list[dict[str, Any]]] = answer["results"]
        return results
