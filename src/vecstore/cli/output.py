"""How `vecstore` shows results and failures: aligned tables, `--json`, one-line errors.

Every command renders one data structure, either as a table for people or as JSON for
scripts, so both forms always carry the same data. Nothing here talks to a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

MAX_CELL_WIDTH = 60


class CliError(click.ClickException):
    """A failure the user can fix: shown as `error: <message>`, exit status 1."""


def cell(value: object, width: int = MAX_CELL_WIDTH) -> str:
    """A table cell: JSON for structures, '-' for None, cut to `width` characters."""
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.4f}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as aligned columns under upper-case headers ('-' for a missing value)."""
    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column), *(len(r[i]) for r in cells)]) for i, column in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def format_fields(fields: Mapping[str, Any]) -> str:
    """A key/value listing for one object (nested objects shown as compact JSON)."""
    width = max((len(key) for key in fields), default=0)
    return "\n".join(f"{key.ljust(width)}  {cell(value, 200)}" for key, value in fields.items())


def to_json(data: object) -> str:
    """The `--json` form: indented, keys in the order the command built them."""
    return json.dumps(data, indent=2, default=str)


def emit(data: object, as_json: bool, render: Callable[[Any], str]) -> None:
    """Print `data` as JSON or through `render`, on stdout."""
    click.echo(to_json(data) if as_json else render(data))


def note(message: str) -> None:
    """A progress or status line on stderr (keeps stdout clean for --json)."""
    click.echo(message, err=True)


def progress_disabled(progress: bool | None) -> bool | None:
    """tqdm's `disable` for --progress/--no-progress: None (the default) shows it on a tty."""
    return None if progress is None else not progress
