"""The search index of every replica agrees with its stored points after healing.

Deleted or overwritten points must not come back through search: each hit's payload must
be the point's stored version, and no id may appear twice in one result.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import aiohttp

from vecstore.chaos.cluster import ChaosCluster
from vecstore.chaos.model.keyspace import Violation, vector_for
from vecstore.chaos.validate.replicas import ReplicaContent

SEARCH_TIMEOUT = aiohttp.ClientTimeout(total=30)


async def check_search_index(
    cluster: ChaosCluster,
    collection: str,
    replicas: Sequence[ReplicaContent],
    rng: random.Random,
    samples: int = 40,
) -> list[Violation]:
    """Search each replica for a sample of its points' own vectors and check the hits."""
    violations = []
    for replica in replicas:
        if replica.error or not replica.points:
            continue
        node = cluster.by_id[replica.node]
        keys = rng.sample(sorted(replica.points), min(samples, len(replica.points)))
        vectors = [vector_for(key, replica.points[key].version or 0) for key in keys]
        body: dict[str, Any] = {"vectors": vectors, "k": 5, "with_payload": True}
        url = f"http://{node.http}/v1/collections/{collection}/search"
        try:
            async with cluster.session.post(url, json=body, timeout=SEARCH_TIMEOUT) as response:
                answer = await response.json(content_type=None)
                if response.status != 200:
                    violations.append(Violation("divergent", None, f"{node.id} search failed: {answer}"))
                    continue
        except (aiohttp.ClientError, TimeoutError) as err:
            violations.append(Violation("divergent", None, f"{node.id} search failed: {err!r}"))
            continue
        for key, hits in zip(keys, answer["results"], strict=True):
            ids = [int(hit["id"]) for hit in hits]
            if len(ids) != len(set(ids)):
                violations.append(Violation("duplicate", key, f"{node.id} search returned ids {ids}"))
            for hit in hits:
                hit_id = int(hit["id"])
                version = (hit.get("payload") or {}).get("version")
                stored = replica.points.get(hit_id)
                if stored is None:
                    violations.append(
                        Violation("corrupt", hit_id, f"{node.id} search returned a deleted point")
                    )
                elif stored.version != version:
                    violations.append(
                        Violation(
                            "corrupt",
                            hit_id,
                            f"{node.id} search returned v{version}, stored v{stored.version}",
                        )
                    )
    return violations
