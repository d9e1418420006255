"""What every `make bench` section does with its result: print the table, write the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def publish(table: str, result: dict[str, Any], json_path: Path | None) -> None:
    """Print `table`; write `result` as indented JSON to `json_path` when one was asked for."""
    print(table)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2))
