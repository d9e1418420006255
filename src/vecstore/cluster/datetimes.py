"""RFC 3339 (and Qdrant's looser) datetimes as integer microseconds since the epoch, UTC.

The accepted forms are those of Qdrant core, as qdrant-client's local mode parses them
(`local/datetime_utils.py`): a missing offset means UTC. Pure functions of the text.
"""

from __future__ import annotations

from datetime import datetime, timedelta

FORMATS = (
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M:%S.%f%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f %z",
    "%Y-%m-%d %H:%M:%S.%f %z",
    "%Y-%m-%dT%H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
MAX_LENGTH = 64
_EPOCH = datetime(1970, 1, 1)  # naive: offsets are applied as numbers
_MICROSECOND = timedelta(microseconds=1)
_EDGE_OFFSET = timedelta(hours=23, minutes=59)


def parse_datetime(text: str) -> int | None:
    """Microseconds since 1970-01-01T00:00:00Z, or None if `text` is no datetime Qdrant reads."""
    if len(text) > MAX_LENGTH:
        return None
    text = _normalize(text)
    parsed = _parse_formats(text)
    if parsed is None:
        offset = text[-3:]  # an hours-only offset (+01) gets its minutes
        if len(offset) == 3 and offset[0] in "+-" and offset[1:].isdigit():
            parsed = _parse_formats(text + ":00")
    return parsed


def format_datetime(micros: int) -> str:
    """The canonical RFC 3339 form of a parse_datetime result (parses back to it)."""
    for offset, suffix in ((timedelta(0), "Z"), (_EDGE_OFFSET, "+23:59"), (-_EDGE_OFFSET, "-23:59")):
        try:  # a moment within a day of datetime's range is written in a local time inside it
            moment = _EPOCH + (micros * _MICROSECOND + offset)
        except OverflowError:
            continue
        return _four_digit_year(moment) + suffix
    raise ValueError(f"{micros} microseconds since the epoch is beyond the years 1..9999")


def _four_digit_year(moment: datetime) -> str:
    return f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.%f")


def _normalize(text: str) -> str:
    text = text.lstrip()
    if text.endswith(" UTC"):
        text = text[: -len(" UTC")] + "+00:00"
    elif text.endswith("z"):
        text = text[:-1] + "Z"
    dot = text.find(".")
    if dot != -1:  # nanoseconds are cut to microseconds, as local mode does
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        if end - dot > 7:
            text = text[: dot + 7] + text[end:]
    return text


def _parse_formats(text: str) -> int | None:
    for form in FORMATS:
        try:
            moment = datetime.strptime(text, form)
        except ValueError:
            continue
        offset = moment.utcoffset() or timedelta(0)
        naive = moment.replace(tzinfo=None)
        return (naive - _EPOCH) // _MICROSECOND - offset // _MICROSECOND
    return None
