"""Read back what every replica holds, and what the router returns, once the cluster healed.

Replicas are read directly (their own HTTP API, eventual consistency), page by page, with
payloads and vectors; the router is asked with strong reads, as a user would.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from vecstore.chaos.cluster import ChaosCluster, ChaosNode

PAGE = 1_000
READ_TIMEOUT = aiohttp.ClientTimeout(total=60)


@dataclass(frozen=True)
class StoredPoint:
    """One point as stored: the version in its payload and its vector."""

    version: int | None
    vector: tuple[float, ...] | None


@dataclass
class ReplicaContent:
    """Everything one replica holds in the chaos collection."""

    node: str
    shard: int
    points: dict[int, StoredPoint] = field(default_factory=dict)
    count: int | None = None
    error: str = ""


def stored(point: dict[str, Any]) -> StoredPoint:
    """A StoredPoint from an API record."""
    payload = point.get("payload") or {}
    version = payload.get("version")
    vector = point.get("vector")
    return StoredPoint(
        int(version) if version is not None else None,
        tuple(float(x) for x in vector) if vector is not None else None,
    )


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with session.post(url, json=body, timeout=READ_TIMEOUT) as response:
        answer: dict[str, Any] = await response.json(content_type=None)
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}: {answer}")
        return answer


async def read_replica(cluster: ChaosCluster, node: ChaosNode, collection: str) -> ReplicaContent:
    """Scroll a whole replica; errors are recorded, not raised."""
    content = ReplicaContent(node.id, node.shard)
    base = f"http://{node.http}/v1/collections/{collection}/points"
    offset: Any = None
    try:
        while True:
            body = {"offset": offset, "limit": PAGE, "with_payload": True, "with_vector": True}
            answer = await _post(cluster.session, f"{base}/scroll", body)
            for point in answer["points"]:
                key = int(point["id"])
                if key in content.points:
                    content.error += f" scroll returned id {key} twice;"
                content.points[key] = stored(point)
            offset = answer.get("next_offset")
            if offset is None:
                break
        content.count = int((await _post(cluster.session, f"{base}/count", {}))["count"])
    except (aiohttp.ClientError, TimeoutError, RuntimeError, KeyError, ValueError) as err:
        content.error += f" {type(err).__name__}: {err}"
    return content


async def read_all_replicas(cluster: ChaosCluster, collection: str) -> list[ReplicaContent]:
    """Every replica's content."""
    return list(await asyncio.gather(*(read_replica(cluster, node, collection) for node in cluster.nodes)))


async def read_through_router(
    cluster: ChaosCluster, collection: str, keys: list[int], attempts: int = 5
) -> tuple[dict[int, StoredPoint], str]:
    """Strong reads of `keys` through the router; (points found, error if it kept failing)."""
    found: dict[int, StoredPoint] = {}
    url = f"{cluster.router_url}/v1/collections/{collection}/points/get"
    for start in range(0, len(keys), PAGE):
        chunk = keys[start : start + PAGE]
        body = {"ids": chunk, "consistency": "strong", "with_payload": True, "with_vector": True}
        error = ""
        for _ in range(attempts):
            try:
                answer = await _post(cluster.session, url, body)
            except (aiohttp.ClientError, TimeoutError, RuntimeError) as err:
                error = f"{type(err).__name__}: {err}"
                await asyncio.sleep(1.0)
                continue
            for point in answer["points"]:
                found[int(point["id"])] = stored(point)
            error = ""
            break
        if error:
            return found, f"strong read of {len(chunk)} keys kept failing: {error}"
    return found, ""


async def router_count(cluster: ChaosCluster, collection: str) -> int | None:
    """The strong count of points through the router (None if it failed)."""
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, RuntimeError, KeyError):
        url = f"{cluster.router_url}/v1/collections/{collection}/points/count"
        return int((await _post(cluster.session, url, {"consistency": "strong"}))["count"])
    return None
