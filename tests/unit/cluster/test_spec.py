"""The cluster spec: parsing, validation and the file forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from vecstore.cluster.spec import SpecError, load_spec, parse_spec, read_spec_file, write_spec

GOOD = {
    "router": {"listen": "0.0.0.0:6333", "max_k": 100},
    "shards": [
        {"id": 0, "nodes": [{"id": "a", "raft": "h1:7000", "http": "h1:8000"}]},
        {"id": 1, "nodes": [{"id": "b", "raft": "h2:7000", "http": "h2:8000"}]},
    ],
}


def test_parse_and_round_trip(tmp_path: Path) -> None:
    spec = parse_spec(GOOD)
    assert spec.router.max_k == 100
    assert spec.node("b")[0].id == 1
    for name in ("spec.json", "spec.yaml"):
        write_spec(spec, tmp_path / name)
        assert read_spec_file(tmp_path / name) == spec
    toml = tmp_path / "spec.toml"
    toml.write_text(
        '[router]\nlisten = "0.0.0.0:6333"\nmax_k = 100\n'
        '[[shards]]\nid = 0\nnodes = [{id = "a", raft = "h1:7000", http = "h1:8000"}]\n'
        '[[shards]]\nid = 1\nnodes = [{id = "b", raft = "h2:7000", http = "h2:8000"}]\n'
    )
    assert read_spec_file(toml) == spec


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "mapping"),
        ({"shards": []}, "non-empty"),
        (
            {
                "shards": [
                    {"id": 1, "nodes": [{"id": "a", "raft": "h:1", "http": "h:2"}]},
                    {"id": 0, "nodes": [{"id": "b", "raft": "h:3", "http": "h:4"}]},
                ]
            },
            "ascending",
        ),
        ({"shards": [{"id": 0, "nodes": [{"id": "a", "raft": "h", "http": "h:2"}]}]}, "host:port"),
        ({"shards": [{"id": 0, "nodes": [{"id": "a", "raft": "h:1"}]}]}, "exactly"),
        (
            {
                "shards": [
                    {
                        "id": 0,
                        "nodes": [
                            {"id": "a", "raft": "h:1", "http": "h:2"},
                            {"id": "a", "raft": "h:3", "http": "h:4"},
                        ],
                    }
                ]
            },
            "twice",
        ),
        ({"shards": GOOD["shards"], "router": {"max_k": "lots"}}, "router.max_k"),
        ({"shards": GOOD["shards"], "router": {"colour": 1}}, "unknown router"),
        ({"shards": GOOD["shards"], "extra": 1}, "unknown"),
    ],
)
def test_bad_specs_name_the_problem(document: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(document)


def test_load_from_environment(tmp_path: Path) -> None:
    inline = '{"shards": [{"id": 0, "nodes": [{"id": "a", "raft": "h:1", "http": "h:2"}]}]}'
    assert load_spec(environ={"VECSTORE_CLUSTER_SPEC": inline}).shards[0].nodes[0].id == "a"
    path = tmp_path / "s.json"
    path.write_text(inline)
    assert load_spec(environ={"VECSTORE_CLUSTER_SPEC_FILE": str(path)}).shards[0].id == 0
    with pytest.raises(SpecError, match="no cluster spec"):
        load_spec(environ={})
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(environ={"VECSTORE_CLUSTER_SPEC_FILE": str(tmp_path / "missing.toml")})


def test_a_removed_shard_may_leave_a_gap_in_the_ids() -> None:
    document = {
        "shards": [
            {"id": 0, "nodes": [{"id": "a", "raft": "h:1", "http": "h:2"}]},
            {"id": 2, "nodes": [{"id": "b", "raft": "h:3", "http": "h:4"}]},
        ]
    }
    spec = parse_spec(document)
    assert spec.shard(2).nodes[0].id == "b"
    with pytest.raises(SpecError, match="shard 1"):
        spec.shard(1)
