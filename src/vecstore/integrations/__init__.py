"""Vector-store adapters for LLM frameworks, over `vecstore.client`.

`vecstore.integrations.langchain` (the `langchain` extra) and
`vecstore.integrations.llama_index` (the `llamaindex` extra); see docs/integrations.md.
This package imports neither framework itself, so it is safe to import without the extras.
"""
