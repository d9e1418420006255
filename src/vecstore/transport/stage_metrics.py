"""The query stage histograms routers and nodes export (`vecstore_*_query_stage_seconds`)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.registry import Collector

from vecstore.cluster.profile import StageTimes


class StageCollector(Collector):
    """Exports a StageTimes as one histogram labelled by stage (bucketed at scrape time)."""

    def __init__(self, name: str, documentation: str, times: StageTimes) -> None:
        self.name = name
        self.documentation = documentation
        self.times = times

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["stage"])
        for histogram in self.times.histograms():
            bounds = [*(f"{bound:g}" for bound in histogram.bounds), "+Inf"]
            buckets = list(zip(bounds, [float(c) for c in histogram.cumulative], strict=True))
            family.add_metric([histogram.name], buckets, histogram.total)
        yield family
