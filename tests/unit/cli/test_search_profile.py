"""`vecstore search --profile`: the request it sends and the table it prints."""

from __future__ import annotations

from vecstore.cli.search import render_profile, search_body


def test_a_profiled_search_asks_for_its_profile_and_drops_unset_options() -> None:
    body = search_body([[0.1, 0.2]], 3, {"must": []}, with_payload=True, ef=None, exact=False)
    assert body == {
        "vectors": [[0.1, 0.2]],
        "k": 3,
        "profile": True,
        "with_payload": True,
        "exact": False,
        "filter": {"must": []},
    }
    assert "filter" not in search_body([[0.1]], 1, None)


def test_the_profile_table_lists_stages_in_order_with_their_place() -> None:
    text = render_profile(
        {
            "total_ms": 2.5,
            "stages": [
                {"name": "parse", "where": "router", "start_ms": 0.0, "ms": 0.05},
                {"name": "hnsw", "where": "shard 1", "start_ms": 1.2, "ms": 0.75},
            ],
        }
    )
    lines = text.splitlines()
    assert lines[0] == "profile: 2.500 ms in the router"
    assert lines[1].split() == ["WHERE", "STAGE", "START_MS", "MS"]
    assert lines[2].split() == ["router", "parse", "0.000", "0.050"]
    assert lines[3].split() == ["shard", "1", "hnsw", "1.200", "0.750"]
