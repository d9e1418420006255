"""Renders helm/vecstore with Helm's own engine (helm-python-sdk binds Helm's Go SDK).

No helm binary, cluster or network is involved. The variants here are the ones the
chart tests and the process test share; it never starts anything.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python
import yaml

from vecstore.cluster.spec import ClusterSpec, parse_spec

CHART_DIR = Path(__file__).resolve().parents[3] / "helm" / "vecstore"
RELEASE = "vs"
NAMESPACE = "vectors"
SPEC_KEY = "cluster.json"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Variant:
    """A set of values to render, and the shape it must produce."""

    name: str
    values: dict[str, Any]
    shards: int
    replicas: int


EXISTING_SECRET = "vecstore-credentials"
TLS_SECRET = "vecstore-tls"
VARIANTS = (
    Variant("default", {}, shards=2, replicas=3),
    Variant("one-by-one", {"shards": {"count": 1, "replicas": 1}}, shards=1, replicas=1),
    Variant("three-by-three", {"shards": {"count": 3, "replicas": 3}}, shards=3, replicas=3),
    Variant(
        "ingest",
        {
            "ingest": {
                "enabled": True,
                "bootstrap": "kafka.streaming.svc:9092",
                "topics": ["points", "points-bulk"],
                "group": "vecstore-ingest",
                "dlqTopic": "points-dlq",
            }
        },
        shards=2,
        replicas=3,
    ),
    Variant("existing-secret", {"auth": {"existingSecret": EXISTING_SECRET}}, shards=2, replicas=3),
    Variant(
        "tls",
        {
            "tls": {"enabled": True, "existingSecret": TLS_SECRET},
            "ingest": {"enabled": True, "bootstrap": "kafka.streaming.svc:9092", "topics": ["points"]},
        },
        shards=2,
        replicas=3,
    ),
    Variant(
        "everything-on",
        {
            "shards": {"count": 2, "replicas": 5},
            "auth": {
                "clusterSecret": "a-cluster-secret-set-in-values",
                "apiKeys": [
                    {"key": "reader-key-0123456789", "scope": "read"},
                    {"key": "admin-key-0123456789", "scope": "admin"},
                ],
            },
            "node": {
                "podAntiAffinity": "hard",
                "settings": {"seal_threshold": 1000000, "gpu": "off"},
                "raft": {"max_timeout": 2.5, "journal_fsync": "always"},
                "persistence": {"storageClassName": "fast-ssd", "size": "100Gi"},
            },
            "router": {
                "settings": {"max_k": 500, "request_timeout": 20.0},
                "autoscaling": {"enabled": True},
                "ingress": {"enabled": True, "className": "nginx"},
            },
            "ingest": {
                "enabled": True,
                "bootstrap": "kafka-0.kafka:9092,kafka-1.kafka:9092",
                "topics": ["points"],
                "replicas": 2,
                "settings": {"batch_max_records": 5000, "max_in_flight": 50000},
            },
            "networkPolicy": {
                "metricsFrom": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
                ]
            },
            "metrics": {"serviceMonitor": {"enabled": True}, "dashboard": {"enabled": True}},
        },
        shards=2,
        replicas=5,
    ),
)


@dataclass
class Rendered:
    """The objects one render produced, with lookups by kind and name."""

    variant: Variant
    objects: list[Manifest]
    notes: str
    sources: dict[str, str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Manifest]:
        """Every object of `kind`, in render order."""
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str) -> Manifest:
        """The object of `kind` named `name`."""
        matches = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind} {name!r}, found {len(matches)}"
        return matches[0]

    def component(self, kind: str, component: str) -> list[Manifest]:
        """Objects of `kind` labelled app.kubernetes.io/component=`component`."""
        return [
            o
            for o in self.of_kind(kind)
            if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]

    def spec_config_map(self) -> Manifest:
        """The ConfigMap that carries the cluster spec."""
        (config_map,) = [o for o in self.of_kind("ConfigMap") if SPEC_KEY in o.get("data", {})]
        return config_map

    def cluster_spec(self) -> ClusterSpec:
        """The spec in the ConfigMap, parsed by the code the processes run."""
        return parse_spec(json.loads(self.spec_config_map()["data"][SPEC_KEY]))

    def secret_values(self) -> set[str]:
        """Every secret string the release holds: whole entries, and each API key."""
        values: set[str] = set()
        for secret in self.of_kind("Secret"):
            for encoded in secret.get("data", {}).values():
                text = base64.b64decode(encoded).decode()
                values.add(text)
                values.update(line.rpartition(":")[0] for line in text.splitlines() if ":" in line)
        auth = self.variant.values.get("auth", {})
        if auth.get("clusterSecret"):
            values.add(auth["clusterSecret"])
        values.update(key["key"] for key in auth.get("apiKeys", []))
        return {v for v in values if v}


def render(variant: Variant, release: str = RELEASE, namespace: str = NAMESPACE) -> Rendered:
    """Check the values against values.schema.json, then render every template."""
    with helm_python.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(variant.values)
        sources = chart.render(values=variant.values, name=release, namespace=namespace)
    objects: list[Manifest] = []
    notes = ""
    for path, text in sorted(sources.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(document for document in yaml.safe_load_all(text) if document)
    return Rendered(variant=variant, objects=objects, notes=notes, sources=sources)


def containers(workload: Manifest) -> list[Manifest]:
    """The containers of a StatefulSet's or Deployment's pod template."""
    result: list[Manifest] = workload["spec"]["template"]["spec"]["containers"]
    return result


def env_of(container: Manifest) -> dict[str, Manifest]:
    """A container's environment entries by name."""
    return {entry["name"]: entry for entry in container.get("env", [])}


def port_of(container: Manifest, name: str) -> int:
    """The number of a container's port, by name."""
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == name]
    return int(port)


def walk_strings(node: object) -> Iterator[str]:
    """Every string (keys included) inside a decoded document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from walk_strings(key)
            yield from walk_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_strings(item)
