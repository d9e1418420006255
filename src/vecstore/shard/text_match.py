r"""String conditions on one payload string: words, phrases, prefixes, regexes, datetimes.

Words are Qdrant's default tokenizer on a field without a text index, as qdrant-client's
local mode has it: runs of letters and digits (`[^\W_]+`), lowercased. Pure functions; a
regex is compiled once per pattern (the pattern's length is bounded when parsed).
"""

from __future__ import annotations

import re
from functools import lru_cache

from vecstore.cluster.datetimes import parse_datetime
from vecstore.cluster.filters import DatetimeRange, Prefix, Regex, StringCondition, Text, TextMode

_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The lowercased words of a text, in order."""
    return [word.lower() for word in _WORD.findall(text)]


@lru_cache(maxsize=256)
def compiled(pattern: str) -> re.Pattern[str]:
    """The compiled pattern (cached: a filter reuses it for every point)."""
    return re.compile(pattern)


def string_holds(condition: StringCondition, value: object) -> bool:
    """True if `value` is a string satisfying the condition."""
    if not isinstance(value, str):
        return False
    if isinstance(condition, Prefix):
        return value.startswith(condition.prefix)
    if isinstance(condition, Regex):
        return compiled(condition.pattern).search(value) is not None
    if isinstance(condition, DatetimeRange):
        return datetime_holds(condition, parse_datetime(value))
    return text_holds(condition, value)


def text_holds(condition: Text, value: str) -> bool:
    """Word match of `condition.query` in `value` (all words, any word, or the phrase)."""
    query = words(condition.query)
    found = words(value)
    if condition.mode is TextMode.ANY:
        present = set(found)
        return any(word in present for word in query)
    if not query:
        return False
    if condition.mode is TextMode.ALL:
        present = set(found)
        return all(word in present for word in query)
    size = len(query)
    return any(found[i : i + size] == query for i in range(len(found) - size + 1))


def datetime_holds(condition: DatetimeRange, micros: int | None) -> bool:
    """True if the parsed datetime is within every bound (None, not a datetime, never is)."""
    return micros is not None and (
        (condition.gt is None or micros > condition.gt)
        and (condition.gte is None or micros >= condition.gte)
        and (condition.lt is None or micros < condition.lt)
        and (condition.lte is None or micros <= condition.lte)
    )
