"""Option value parsers shared by the pytest plugin and the command line (argparse ``type=`` functions).

Each raises ``argparse.ArgumentTypeError`` with a message that says what is expected, so argparse (and
pytest, whose parser is argparse) turns a bad value into a usage error naming the option. The plugin applies
the same functions to its ``PTQ_*`` environment variables, lazily, and names the variable instead.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def at_least(minimum: int) -> Callable[[str], int]:
    """A parser of whole numbers >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


positive = at_least(1)
utterance_count = at_least(0)  # 0: every utterance


def names(text: str) -> tuple[str, ...]:
    """A comma list of non-empty names (``a,b``); an empty list is an error."""
    parts = tuple(p.strip() for p in str(text).split(",") if p.strip())
    if not parts:
        raise argparse.ArgumentTypeError(f"{text!r} is empty; give at least one value")
    return parts


def patterns(text: str) -> tuple[str, ...]:
    """A comma list of fnmatch patterns; may be empty."""
    return tuple(p.strip() for p in str(text).split(",") if p.strip())


def device(text: str) -> str:
    """cpu, cuda, cuda:N or auto."""
    value = str(text).strip()
    if value in ("cpu", "cuda", "auto") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu, cuda, cuda:N or auto")


def from_environment(parse: Callable[[str], object], variable: str, text: str, option: str):
    """``parse(text)`` for a value read from ``variable``; a bad one is a ValueError naming option and variable."""
    try:
        return parse(text)
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"{option} (from {variable}={text!r}): {err}") from None


def executable(text: str) -> str:
    """The path of an executable file (a Python interpreter of another environment)."""
    import os
    import shutil

    path = shutil.which(text) if os.sep not in text else text
    if not path or not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"{text!r}: no such file (give e.g. /path/to/venv/bin/python)")
    if not os.access(path, os.X_OK):
        raise argparse.ArgumentTypeError(f"{text!r} is not executable")
    return os.path.abspath(path)
