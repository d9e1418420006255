"""VecStore Cluster: a distributed vector database (rooms: see the README)."""
