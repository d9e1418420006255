"""The Qdrant-compatible REST subset (docs/qdrant.md): translation to and from the native
API, and the routes, declared in one explicit table (`routes.ROUTES`)."""
