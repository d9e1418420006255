"""docs/integrations.md: every Python example (LangChain and LlamaIndex) runs as written
against a real 2 x 3 cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import started_cluster
from tests.integration.doc_examples import blocks, run_python
from vecstore.launcher.local_cluster import LocalCluster

EXAMPLES = blocks("integrations.md", "python")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from started_cluster(tmp_path_factory.mktemp("docs-integrations") / "cluster", shards=2)


def test_the_page_has_its_examples() -> None:
    assert len(EXAMPLES) == 3


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_example_runs_as_written(cluster: LocalCluster, number: int, tmp_path: Path) -> None:
    run_python(EXAMPLES[number], cluster.router_url, tmp_path)
