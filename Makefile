# VecStore Cluster: the two README commands (`make demo`, `make test`) and the developer targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo demo-shard test lint unit integration rooms security bench bench-scale bench-gpu chaos clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# a whole local cluster (2 shards x 3 replicas + router) driven through the `vecstore` CLI
demo: $(STAMP)
	$(PY) -m vecstore.cli.demo $(DEMO_ARGS)

# the shard core alone, in process
demo-shard: $(STAMP)
	$(PY) -m vecstore.shard.demo

# The code is in src/vecstore/ (the top-level room names are symlinks to it), so ruff
# and mypy read the package as it is installed.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy -p vecstore
	$(VENV)/bin/mypy tests bench

test: $(STAMP)
	$(MAKE) lint
	$(PY) -m pytest -q

# the fast half (seconds to a minute): unit and property tests, no processes started
unit: $(STAMP)
	$(PY) -m pytest -q tests/unit tests/property

# the room table (tests/unit/test_rooms.py): which room may import which, and no import circle
rooms: $(STAMP)
	$(PY) -m pytest -q tests/unit/test_rooms.py

# the security suite (also part of `make test`): each probe of docs/security.md replayed
# against a real cluster
security: $(STAMP)
	$(PY) -m pytest -q -m security tests

# real processes: clusters on 127.0.0.1, the Kafka-protocol broker, HTTP
integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

# The peers of the comparison (the `bench` extra) have a stamp of their own, so that
# `make test` never needs them.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

# The published comparison (docs/benchmarks.md): each section prints its table, and the
# last one, against the peers, rewrites the doc's generated tables and plots (about 40
# minutes on 2 cores). BENCH_ARGS=--quick for a smoke run (also run inside `make test`,
# tiny, by tests/integration/test_bench_smoke.py).
bench: $(BENCH_STAMP)
	$(PY) -m bench.shard_vs_usearch $(BENCH_ARGS)
	$(PY) -m bench.replication $(BENCH_ARGS)
	$(PY) -m bench.router $(BENCH_ARGS)
	$(PY) -m bench.client $(BENCH_ARGS)
	$(PY) -m bench.profiler $(BENCH_ARGS)
	$(PY) -m bench.load_then_query $(BENCH_ARGS)
	$(PY) -m bench.reshard $(BENCH_ARGS)
	$(PY) -m bench.hops $(if $(findstring --quick,$(BENCH_ARGS)),,--docs) $(BENCH_ARGS)
	$(PY) -m bench.ingest $(BENCH_ARGS)
	$(PY) -m bench.bulk $(BENCH_ARGS)
	$(PY) -m bench.compaction $(BENCH_ARGS)
	$(PY) -m bench.geo $(BENCH_ARGS)
	$(PY) -m bench.multivector $(BENCH_ARGS)
	$(if $(findstring --quick,$(BENCH_ARGS)),,$(PY) -m bench.embeddings --rows 20000)
	$(PY) -m bench.comparison $(if $(findstring --quick,$(BENCH_ARGS)),,--docs) $(BENCH_ARGS)
	$(PY) -m bench.hybrid $(BENCH_ARGS)

# A million 128-d vectors through Kafka into a 2 x 3 cluster, then queries, a node restart and
# a new replica caught up by snapshot (docs/benchmarks.md, "Scale"); about half an hour on 2
# cores, not part of `make bench`. SCALE_ARGS=--quick for a 10,000-row smoke (in `make test`).
bench-scale: $(STAMP)
	$(PY) -m bench.scale $(SCALE_ARGS)

# The scorer's cupy path against numpy; needs an NVIDIA GPU (exits 2 with a message without one).
bench-gpu: $(STAMP)
	$(PY) -m pip install --quiet -e '.[gpu]'
	$(PY) -m bench.gpu $(BENCH_GPU_ARGS)

# fault injection against real local clusters (docs/chaos.md); non-zero exit on any violation
CHAOS_DURATION ?= 20m
CHAOS_REPORT ?= chaos-report.json
chaos: $(STAMP)
	$(PY) -m vecstore.chaos --duration $(CHAOS_DURATION) --report $(CHAOS_REPORT) $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
