"""praatio sdist: three example recordings, transcribed by the word tier of their Praat TextGrids."""

from __future__ import annotations

import re
from pathlib import Path

from tools.corpora.common import BuildError, sdist_dir, sdist_label
from tools.corpora.plan import RealItem, RealPlan

PACKAGE = "praatio"
EXAMPLES = (
    ("bobby", "bobby_words.TextGrid"),
    ("mary", "mary.TextGrid"),
    ("damon_set_test", "damon_set_test.TextGrid"),
)


def decode_textgrid(raw: bytes) -> str:
    """A TextGrid file's text: UTF-16 with a byte-order mark, else UTF-8 (with or without one)."""
    return raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")


def parse_textgrid_text(text: str) -> dict[str, list[tuple[float, float, str]]]:
    """Interval tiers of a Praat TextGrid (long or short text format): {tier name: [(xmin, xmax, text)]}."""
    text = re.sub(r"\[\s*\d*\s*\]", " ", text)  # "item [1]:", "intervals [3]:" are labels, not values
    tokens = re.findall(r'"(?:[^"]|"")*"|<exists>|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?', text)
    values = [t[1:-1].replace('""', '"') if t.startswith('"') else t for t in tokens]
    # "ooTextFile", "TextGrid", xmin, xmax, <exists>, n_tiers, then the tiers
    pos = values.index("<exists>") + 1
    n_tiers = int(values[pos])
    pos += 1
    tiers = {}
    for _ in range(n_tiers):
        kind, name = values[pos], values[pos + 1]
        n = int(values[pos + 4])
        pos += 5
        if kind == "IntervalTier":
            tiers[name] = [
                (float(values[pos + 3 * i]), float(values[pos + 3 * i + 1]), values[pos + 3 * i + 2]) for i in range(n)
            ]
            pos += 3 * n
        else:  # TextTier: time, mark
            pos += 2 * n
    return tiers


def parse_textgrid(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    """Interval tiers of a Praat TextGrid file: {tier name: [(xmin, xmax, text)]}."""
    return parse_textgrid_text(decode_textgrid(path.read_bytes()))


def word_tier_text(tiers: dict[str, list[tuple[float, float, str]]], grid: str) -> str:
    """The words of the ``word`` (or ``words``) tier, empty intervals skipped, joined by spaces."""
    tier = tiers.get("word") or tiers.get("words")
    if not tier:
        raise BuildError(f"{grid}: no word tier")
    return " ".join(t.strip() for _, _, t in tier if t.strip())


def plan(work: Path, fetch: bool) -> RealPlan:
    result = RealPlan()
    pra = sdist_dir(work, PACKAGE, fetch=fetch)
    ppkg = sdist_label(PACKAGE)
    for stem, grid in EXAMPLES:
        text = word_tier_text(parse_textgrid(pra / "examples" / "files" / grid), grid)
        result.items.append(
            RealItem(
                f"praatio-{stem.split('_')[0]}",
                pra / "examples" / "files" / f"{stem}.wav",
                text,
                f"{ppkg} examples/files/{stem}.wav",
                "praatio example recording",
                "MIT (praatio)",
                f"{ppkg} examples/files/{grid} (word tier)",
            )
        )
    return result
