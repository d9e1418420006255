"""A write that spans shards is refused everywhere or applied everywhere for input errors.

The probe: a payload merge by filter over a stored point near the payload limit used to be
applied on one shard and refused (413) on the other. Here it is reproduced on the path the
router took before (every shard written at once, no dry run), then every kind of
multi-shard write that one shard would refuse is sent through the router and must come
back 413 with `partial: false` while no shard's digest changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import started_cluster
from vecstore.cluster.commands import Selector, SetPayload
from vecstore.cluster.errors import PayloadTooLarge
from vecstore.cluster.filters import parse_filter
from vecstore.cluster.topology import Topology
from vecstore.launcher.local_cluster import LocalCluster
from vecstore.router.metrics import RouterMetrics
from vecstore.router.shards import ShardSet
from vecstore.transport.node_client import NodeClient

pytestmark = pytest.mark.security

MAX_COMMAND = 64 * 1024
MAX_PAYLOAD = 8 * 1024
EVERY_POINT = {"must": [{"key": "n", "range": {"gte": 0}}]}
POINTS = 40


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """2 shards x 1 node whose nodes take commands up to 64 KiB and payloads up to 8 KiB."""
    node_env = {
        "VECSTORE_MAX_COMMAND_BYTES": str(MAX_COMMAND),
        "VECSTORE_MAX_PAYLOAD_BYTES": str(MAX_PAYLOAD),
    }
    yield from started_cluster(tmp_path_factory.mktemp("multi"), shards=2, replicas=1, node_env=node_env)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def ids_by_shard(cluster: LocalCluster) -> dict[int, list[int]]:
    """The first POINTS ids, by the shard that owns them."""
    topology = Topology.of_spec(cluster.spec)
    owned: dict[int, list[int]] = {shard: [] for shard in topology.ids}
    for point_id in range(POINTS):
        owned[topology.owner(point_id)].append(point_id)
    assert all(owned.values()), owned
    return owned


async def digests(cluster: LocalCluster) -> dict[int, str]:
    """Every shard's content digest, from its (only) node."""
    found = {}
    for shard in cluster.spec.shards:
        address = shard.nodes[0].http
        async with NodeClient([address], access=cluster.access) as client:
            found[shard.id] = (await client.status(address))["digest"]
    return found


async def call(
    session: aiohttp.ClientSession, cluster: LocalCluster, method: str, path: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with session.request(method, f"{cluster.router_url}/v1/collections/{path}", json=body) as answer:
        return answer.status, await answer.json()


async def fresh_collection(session: aiohttp.ClientSession, cluster: LocalCluster, name: str) -> None:
    """`name` with POINTS small points on both shards (payload {"n": id})."""
    status, _ = await call(session, cluster, "PUT", name, {"dimension": 2})
    assert status == 200
    points = [{"id": i, "vector": [1.0, float(i)], "payload": {"n": i}} for i in range(POINTS)]
    status, body = await call(session, cluster, "PUT", f"{name}/points", {"points": points})
    assert (status, body["upserted"]) == (200, POINTS)


async def refused_everywhere(
    session: aiohttp.ClientSession, cluster: LocalCluster, method: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Send a write that one shard must refuse; 413, `partial: false`, no shard changed."""
    before = await digests(cluster)
    status, answer = await call(session, cluster, method, path, body)
    assert status == 413, answer
    assert answer["code"] == "payload_too_large" and answer["partial"] is False
    assert await digests(cluster) == before
    return answer


async def test_the_probe_partial_apply_of_a_merge_by_filter_is_now_refused_everywhere(
    cluster: LocalCluster, session: aiohttp.ClientSession
) -> None:
    await fresh_collection(session, cluster, "probe")
    owned = ids_by_shard(cluster)
    big = owned[0][0]  # a point of shard 0 near the limit: a merge of 2 KB more overflows it
    status, _ = await call(
        session, cluster, "POST", "probe/points/payload", {"ids": [big], "payload": {"blob": "x" * 7000}}
    )
    assert status == 200

    # Reproduction: the router's old path (every shard written at once) applied it on shard 1.
    shards = ShardSet(cluster.spec, RouterMetrics(), cluster.access)
    await shards.start()
    try:
        merge = SetPayload("probe", Selector.of_filter(parse_filter(EVERY_POINT)), {"old": "y" * 2000})
        with pytest.raises(PayloadTooLarge) as refused:
            await shards._write_everywhere(merge)
        assert refused.value.details["partial"] is True
        assert refused.value.details["applied_shards"] == [1]
        assert [entry["shard"] for entry in refused.value.details["failed"]] == [0]
    finally:
        await shards.close()
    status, body = await call(session, cluster, "POST", "probe/points/get", {"ids": owned[1][:1]})
    assert body["points"][0]["payload"]["old"] == "y" * 2000  # shard 1 did change

    # Through the router now: the dry run on every shard refuses it before any applies it.
    answer = await refused_everywhere(
        session,
        cluster,
        "POST",
        "probe/points/payload",
        {"filter": EVERY_POINT, "payload": {"new": "z" * 2000}},
    )
    assert answer["shard"] == 0 and answer["dry_run"] is True
    # the same by ids across both shards; a change that fits every shard is applied on both
    await refused_everywhere(
        session,
        cluster,
        "POST",
        "probe/points/payload",
        {"ids": [big, owned[1][0]], "payload": {"new": "z" * 2000}},
    )
    status, body = await call(
        session, cluster, "PUT", "probe/points/payload", {"filter": EVERY_POINT, "payload": {"n": 1}}
    )
    assert (status, body["updated"]) == (200, POINTS)


async def test_an_upsert_whose_part_one_shard_would_refuse_is_refused_everywhere(
    cluster: LocalCluster, session: aiohttp.ClientSession
) -> None:
    await fresh_collection(session, cluster, "upserts")
    owned = ids_by_shard(cluster)

    def point(point_id: int, payload_bytes: int) -> dict[str, Any]:
        return {"id": point_id, "vector": [0.5, 0.5], "payload": {"n": point_id, "pad": "p" * payload_bytes}}

    # shard 0's part is over the nodes' 64 KiB per command; shard 1's part is tiny
    over_command = [point(i, 6000) for i in owned[0][:12]] + [point(owned[1][0], 10)]
    answer = await refused_everywhere(session, cluster, "PUT", "upserts/points", {"points": over_command})
    assert answer["shard"] == 0 and "send smaller batches" in answer["error"]

    # one point of shard 1 over the nodes' 8 KiB payload limit (the router's default is 64 KiB)
    over_payload = [point(i, 10) for i in owned[0][:3]] + [point(owned[1][0], 9000)]
    answer = await refused_everywhere(session, cluster, "PUT", "upserts/points", {"points": over_payload})
    assert answer["shard"] == 1 and str(MAX_PAYLOAD) in answer["error"]

    # the same shapes within the limits are written on both shards
    fine = [point(i, 3000) for i in owned[0][:5]] + [point(i, 3000) for i in owned[1][:5]]
    status, body = await call(session, cluster, "PUT", "upserts/points", {"points": fine})
    assert (status, body["upserted"]) == (200, 10)


async def test_input_errors_the_router_sees_are_refused_before_any_shard(
    cluster: LocalCluster, session: aiohttp.ClientSession
) -> None:
    await fresh_collection(session, cluster, "inputs")
    owned = ids_by_shard(cluster)
    both = [owned[0][0], owned[1][0]]
    before = await digests(cluster)
    refusals: list[tuple[str, str, dict[str, Any]]] = [
        ("PUT", "inputs/points", {"points": [{"id": i, "vector": [1.0, 2.0, 3.0]} for i in both]}),
        ("PUT", "inputs/points", {"points": [{"id": both[0], "vector": [1.0, 2.0]}, {"id": both[1]}]}),
        ("POST", "inputs/points/payload", {"filter": {"must": [{"key": "n", "nope": 1}]}, "payload": {}}),
        ("POST", "inputs/points/payload", {"ids": both, "payload": {"deep": _nested(40)}}),
        ("POST", "missing/points/delete", {"ids": both}),
    ]
    for method, path, body in refusals:
        status, answer = await call(session, cluster, method, path, body)
        assert 400 <= status < 500, (path, answer)
        assert answer["status"] == "error" and answer["error"]
    nan = b'{"points": [{"id": 1, "vector": [NaN, 1.0]}, {"id": 2, "vector": [1.0, 1.0]}]}'
    url = f"{cluster.router_url}/v1/collections/inputs/points"
    async with session.put(url, data=nan, headers={"Content-Type": "application/json"}) as response:
        assert response.status == 400
    assert await digests(cluster) == before


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value
