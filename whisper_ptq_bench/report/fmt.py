"""Formatting of numbers and name lists for the report's cells and paragraphs; a missing value is a dash."""

from __future__ import annotations

from whisper_ptq_bench.report.load import number

DASH = "—"
_MAX_NAMES = 5


def fmt_pct(fraction, digits: int = 2) -> str:
    value = number(fraction)
    return DASH if value is None else f"{value * 100:.{digits}f}%"


def fmt_points(fraction, digits: int = 2) -> str:
    value = number(fraction)
    return DASH if value is None else f"{value * 100:+.{digits}f}"


def fmt_ci(ci) -> str:
    if not isinstance(ci, list | tuple) or len(ci) != 2:
        return DASH
    low, high = (number(v) for v in ci)
    if low is None or high is None:
        return DASH
    return f"[{low * 100:+.2f}, {high * 100:+.2f}]"


def fmt_num(value, spec: str, suffix: str = "") -> str:
    x = number(value)
    return DASH if x is None else f"{x:{spec}}{suffix}"


def listed(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    return f"{len(names)}: {shown}" + (f", … (+{len(names) - _MAX_NAMES} more)" if len(names) > _MAX_NAMES else "")
