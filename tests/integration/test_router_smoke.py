"""The router in front of a 2 x 3 cluster: the native API end to end."""

from __future__ import annotations

import aiohttp

from vecstore.launcher.local_cluster import LocalCluster


async def test_native_api_round_trip(local_cluster: LocalCluster) -> None:
    url = local_cluster.router_url
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{url}/v1/collections/docs", json={"dimension": 4}) as response:
            assert response.status == 200, await response.text()
        points = [
            {"id": i, "vector": [float(i % 4 == j) for j in range(4)], "payload": {"n": i}} for i in range(40)
        ]
        async with session.put(f"{url}/v1/collections/docs/points", json={"points": points}) as response:
            assert response.status == 200
            assert (await response.json())["upserted"] == 40
        async with session.post(
            f"{url}/v1/collections/docs/points/count", json={"consistency": "strong"}
        ) as response:
            assert (await response.json())["count"] == 40
        query = {
            "vector": [1, 0, 0, 0],
            "k": 5,
            "filter": {"must": [{"key": "n", "range": {"lt": 10}}]},
            "consistency": "strong",
        }
        async with session.post(f"{url}/v1/collections/docs/search", json=query) as response:
            hits = (await response.json())["result"]
        assert len(hits) == 5
        assert {h["id"] for h in hits[:3]} == {0, 4, 8}
        pages: list[int] = []
        offset = None
        while True:
            body = {"limit": 7, "offset": offset, "consistency": "strong"}
            async with session.post(f"{url}/v1/collections/docs/points/scroll", json=body) as response:
                answer = await response.json()
            pages += [p["id"] for p in answer["points"]]
            offset = answer["next_offset"]
            if offset is None:
                break
        assert pages == list(range(40))
