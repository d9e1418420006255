# syntax=docker/dockerfile:1
# One image for every VecStore role: `vecstore node run`, `vecstore router run`,
# `vecstore ingest run`, and the admin commands (`vecstore status`, ...).
#
#   docker build -t vecstore:0.1.0 .
#   docker run --rm vecstore:0.1.0 --help
#
# The base is pinned to an exact tag; pin it to a digest as well where your registry
# policy asks for one: --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Every dependency ships manylinux wheels (numpy, usearch, cryptography, msgpack,
# aiohttp), so no compiler is needed; the venv is copied whole into the runtime stage.
RUN python -m venv /opt/vecstore
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/vecstore/bin/pip install --no-compile . \
    && /opt/vecstore/bin/python -m compileall -q /opt/vecstore/lib

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="vecstore" \
      org.opencontainers.image.description="VecStore Cluster: Raft-replicated shards of HNSW segments" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric uid/gid so Kubernetes can check runAsNonRoot and fsGroup can own the
# data volume. /var/lib/vecstore is the data directory (a volume in the Helm chart).
RUN groupadd --system --gid 10001 vecstore \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/vecstore \
       --no-create-home --shell /usr/sbin/nologin vecstore \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/vecstore
COPY --from=build /opt/vecstore /opt/vecstore
# The root filesystem is read-only in the chart: no bytecode writes, HOME on /tmp.
ENV PATH=/opt/vecstore/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    VECSTORE_DATA_DIR=/var/lib/vecstore
WORKDIR /var/lib/vecstore
USER 10001:10001
# router API, Raft, node HTTP API
EXPOSE 6333 7000 8000
ENTRYPOINT ["vecstore"]
CMD ["--help"]
