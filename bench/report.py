"""Turns a benchmark result (a JSON-able dict) into aligned plain-text tables and a verdict.

Ratios are shard / usearch: above 1 the shard is faster (or, for memory, larger).
"At equal recall" interpolates usearch's QPS along its recall curve (log-linear in QPS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MIB = 1024 * 1024
Row = Sequence[str]


def render(result: dict[str, Any]) -> str:
    """All tables, one after another."""
    config = result["config"]
    sections = [
        _heading(result),
        _insert_table(result),
        _search_table(result),
        _equal_recall_table(result),
        _memory_table(result),
        _targets_table(result),
    ]
    notes = [
        f"ratio = shard / usearch. Searches use k={config['k']}, {config['queries']:,} queries; "
        f"QPS is the best of {config['repeats']} interleaved rounds. Batch = all queries in one call "
        "(all cores); single = one call per query in a loop (one core).",
        "shard beam: the shard passes count=max(k, ef) (f16/i8: max(k x rescore_factor, ef)) to "
        "usearch, whose beam is max(count, expansion_search=64), so ef below 64 does not narrow "
        "the shard's search; 'beam' shows what each engine really used.",
        "memory: each engine measured alone in a fresh process; deltas over that process's baseline "
        "after imports. RssFile is memory-mapped segment pages (page cache, reclaimable); RssAnon "
        "is heap and in-memory indexes.",
    ]
    return "\n\n".join([*sections, "\n".join(f"note: {line}" for line in notes)])


def table(headers: Row, rows: Sequence[Row]) -> str:
    """Columns padded to their widest cell: the first left-aligned, the rest right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for number, row in enumerate([headers, *rows]):
        cells = [
            cell.ljust(width) if position == 0 else cell.rjust(width)
            for position, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _heading(result: dict[str, Any]) -> str:
    config, machine = result["config"], result["machine"]
    hnsw = config["hnsw"]
    return (
        f"shard vs usearch: {config['rows']:,} x {config['dim']} clustered rows "
        f"({config['clusters']} clusters, seed {config['seed']}), cosine, connectivity "
        f"{hnsw['connectivity']}, expansion_add {hnsw['expansion_add']}, expansion_search "
        f"{hnsw['expansion_search']}\nmachine: {machine['cpus']} CPUs, {machine['platform']}, "
        f"python {machine['python']}, numpy {machine['numpy']}, usearch {machine['usearch']}"
    )


def _insert_table(result: dict[str, Any]) -> str:
    inserts = result["insert"]
    reference = inserts["usearch f32"]
    rows = []
    for name, entry in inserts.items():
        shard = name.startswith("shard")
        rows.append(
            [
                name,
                f"{entry['rows_per_s']:,.0f}",
                f"{entry['indexed_s']:.1f}",
                _ratio(entry["rows_per_s"], reference["rows_per_s"]),
                f"{entry['cpu_s']:.1f}",
                f"{entry['rows_per_cpu_s']:,.0f}",
                _ratio(entry["rows_per_cpu_s"], reference["rows_per_cpu_s"]),
                f"{entry['apply_s']:.1f}" if shard else "",
                f"{entry['seal_s']:.1f}" if shard else "",
            ]
        )
    headers = [
        "insert until indexed",
        "rows/s",
        "wall s",
        "ratio",
        "CPU s",
        "rows/CPU-s",
        "ratio",
        "apply s",
        "seal+compact s",
    ]
    return table(headers, rows)


def _search_table(result: dict[str, Any]) -> str:
    usearch = {point["ef"]: point for point in result["search"]["usearch f32"]}
    default_ef = result["config"]["hnsw"]["expansion_search"]
    rows = []
    for name, points in result["search"].items():
        for point in points:
            base = usearch.get(point["ef"] or default_ef) if name.startswith("shard") else None
            rows.append(
                [
                    name,
                    "default" if point["ef"] is None else str(point["ef"]),
                    str(point["beam"]),
                    f"{point['recall']:.4f}",
                    f"{point['batch_qps']:,.0f}",
                    _ratio(point["batch_qps"], base["batch_qps"]) if base else "",
                    f"{point['single_qps']:,.0f}",
                    _ratio(point["single_qps"], base["single_qps"]) if base else "",
                ]
            )
    headers = ["search, same ef", "ef", "beam", "recall@10", "batch q/s", "ratio", "single q/s", "ratio"]
    return table(headers, rows)


def _equal_recall_table(result: dict[str, Any]) -> str:
    curve = result["search"]["usearch f32"]
    rows = []
    for name, points in result["search"].items():
        if not name.startswith("shard"):
            continue
        for point in points:
            row = [name, "default" if point["ef"] is None else str(point["ef"]), f"{point['recall']:.4f}"]
            for field in ("batch_qps", "single_qps"):
                usearch, mark = usearch_qps_at(curve, point["recall"], field)
                usearch_cpu, _ = usearch_qps_at(curve, point["recall"], field + "_cpu")
                row += [
                    f"{point[field]:,.0f}",
                    f"{usearch:,.0f}",
                    _ratio(point[field], usearch) + mark,
                    _ratio(point[field + "_cpu"], usearch_cpu) + mark,
                ]
            rows.append(row)
    headers = [
        "search, equal recall",
        "ef",
        "recall@10",
        "shard batch",
        "usearch batch",
        "ratio",
        "CPU ratio",
        "shard single",
        "usearch single",
        "ratio",
        "CPU ratio",
    ]
    legend = (
        "\n(usearch q/s interpolated along its ef sweep at the shard's recall. CPU ratio: the same "
        "with queries per CPU-second of the process, steadier on a shared machine. +: usearch's "
        "widest ef stays below this recall, so the ratio flatters usearch; -: usearch's narrowest "
        "ef already reaches it, so the ratio flatters the shard)"
    )
    return table(headers, rows) + legend


def usearch_qps_at(curve: Sequence[dict[str, Any]], recall: float, field: str) -> tuple[float, str]:
    """usearch's QPS at `recall` along its ef sweep, and a mark when outside the sweep."""
    points = sorted(curve, key=lambda point: point["ef"])
    best_recall = -1.0
    previous: tuple[float, float] | None = None
    for point in points:
        if point["recall"] <= best_recall:
            continue  # keep the curve increasing: a wider beam that did not help is skipped
        best_recall = point["recall"]
        current = (best_recall, point[field])
        if best_recall >= recall:
            if previous is None:
                return current[1], "-"
            fraction = (recall - previous[0]) / (current[0] - previous[0])
            log_qps = math.log(previous[1]) + fraction * (math.log(current[1]) - math.log(previous[1]))
            return math.exp(log_qps), ""
        previous = current
    assert previous is not None, "usearch curve is empty"
    return previous[1], "+"


def _memory_table(result: dict[str, Any]) -> str:
    memory = result["memory"]
    reference = memory["usearch f32"]["searched"]
    rows = []
    for name, report in memory.items():
        for state in ("loaded", "searched"):
            usage = report[state]
            rows.append(
                [
                    f"{name}, {'after load' if state == 'loaded' else 'after query batch'}",
                    _mib(usage["rss"]),
                    _mib(usage["anon"]),
                    _mib(usage["file"]),
                    _mib(usage["peak"]),
                    _ratio(usage["rss"], reference["rss"]),
                    _ratio(usage["anon"], reference["anon"]),
                ]
            )
    baseline = next(iter(memory.values()))["baseline"]
    headers = [
        "memory (MiB over baseline)",
        "RSS",
        "RssAnon",
        "RssFile",
        "peak RSS",
        "RSS ratio",
        "anon ratio",
    ]
    return table(headers, rows) + f"\n(baseline after imports: {_mib(baseline['rss'])} MiB RSS)"


def targets(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured value, met) for each target of the issue that was measured."""
    found: list[tuple[str, str, bool]] = []
    search = result["search"]
    curve = search["usearch f32"]
    f32 = _default_point(search.get("shard f32"))
    if f32 is not None:
        for field, label in (("batch_qps", "batch"), ("single_qps", "single-query")):
            usearch, mark = usearch_qps_at(curve, f32["recall"], field)
            usearch_cpu, _ = usearch_qps_at(curve, f32["recall"], field + "_cpu")
            ratio = f32[field] / usearch
            measured = f"{ratio:.2f}x{mark} (CPU {f32[field + '_cpu'] / usearch_cpu:.2f}x)"
            found.append((f"shard {label} QPS >= 0.8x usearch at equal recall", measured, ratio >= 0.8))
        found.append(
            ("recall@10 >= 0.95 at default settings (f32)", f"{f32['recall']:.4f}", f32["recall"] >= 0.95)
        )
        i8 = _default_point(search.get("shard i8"))
        if i8 is not None:
            gap = f32["recall"] - i8["recall"]
            found.append(("i8 with re-scoring within 0.01 of f32 recall", f"{gap:+.4f}", gap <= 0.01))
    memory = result["memory"]
    if "shard f32" in memory:
        usearch_rss = memory["usearch f32"]["searched"]
        shard_rss = memory["shard f32"]["searched"]
        for field, label in (("rss", "RSS"), ("anon", "RssAnon")):
            ratio = shard_rss[field] / usearch_rss[field]
            found.append((f"sealed {label} <= 0.4x in-memory usearch", f"{ratio:.2f}x", ratio <= 0.4))
    return found


def _targets_table(result: dict[str, Any]) -> str:
    rows = [[name, value, "met" if met else "MISSED"] for name, value, met in targets(result)]
    return table(["target", "measured", "verdict"], rows)


def _default_point(points: Sequence[dict[str, Any]] | None) -> dict[str, Any] | None:
    if not points:
        return None
    return next((point for point in points if point["ef"] is None), None)


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference else "n/a"


def _mib(value: int) -> str:
    return f"{value / MIB:,.1f}"
