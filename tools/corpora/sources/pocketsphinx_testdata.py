"""Debian ``pocketsphinx-testdata``: LibriVox and playing-card recordings with Sphinx transcriptions, two raw clips."""

from __future__ import annotations

import re
from pathlib import Path

from tools.corpora.plan import Dropped, RealItem, RealPlan

PS_TESTDATA = Path("/usr/share/pocketsphinx/test/data")
LISTINGS = (("librivox", "transcription"), ("cards", "cards.transcription"))
LICENSE = "BSD-2-Clause (CMU Sphinx; Debian copyright of pocketsphinx-testdata)"
# pocketsphinx-testdata transcriptions that do not match the audio.
PS_DROP = {
    "sense_and_sensibility_01_austen_64kb-0920": (
        "the transcription reads 'a more a amiable' but the reader says 'a more amiable' (the book's text): forced "
        "alignment scores the transcription worse and gives the extra 'a' the minimum 50 ms"
    ),
}
SPHINX_LINE = re.compile(r"\s*<s>(.*)</s>\s*\((\S+)\)\s*")


def parse_transcription_line(line: str) -> tuple[str, str] | None:
    """``<s> words </s> (stem)`` of a Sphinx transcription file -> (words, whitespace collapsed; stem); None for
    any other line."""
    m = SPHINX_LINE.fullmatch(line)
    if not m:
        return None
    return " ".join(m.group(1).split()), m.group(2)


def utterance(sub: str, stem: str) -> tuple[str, str]:
    """(utterance id, origin) of recording ``sub/stem.wav``: LibriVox segments are named by their number."""
    if sub == "librivox":
        segment = stem.rsplit("-", 1)[1]
        return f"ps-librivox-{segment}", f"LibriVox, Sense and Sensibility ch. 1 (Jane Austen), segment {segment}"
    return f"ps-cards-{stem}", "CMU Sphinx test recording (playing cards grammar)"


def plan(debs: dict[str, str], root: Path | None = None) -> RealPlan:
    """The recordings of the installed package (under ``root``, by default PS_TESTDATA)."""
    root = PS_TESTDATA if root is None else root
    result = RealPlan()
    add = result.items.append
    deb = f"pocketsphinx-testdata=={debs['pocketsphinx-testdata']} (Debian)"
    for sub, listing in LISTINGS:
        for line in (root / sub / listing).read_text().splitlines():
            parsed = parse_transcription_line(line)
            if parsed is None:
                continue
            words, stem = parsed
            if stem in PS_DROP:
                result.dropped.append(Dropped(f"pocketsphinx-testdata {sub}/{stem}.wav ({words!r})", PS_DROP[stem]))
                continue
            rel = f"{sub}/{stem}.wav"
            utt_id, origin = utterance(sub, stem)
            add(RealItem(utt_id, root / rel, words, f"{deb} {root / rel}", origin, LICENSE, f"{root / sub / listing}"))
    add(
        RealItem(
            "ps-goforward",
            root / "goforward.raw",
            "go forward ten meters",
            f"{deb} {root / 'goforward.raw'}",
            "CMU Sphinx test recording",
            LICENSE,
            "asserted in pocketsphinx==5.1.1 cython/test/continuous_test.py",
            raw=True,
        )
    )
    add(
        RealItem(
            "ps-digits-2934z",
            root / "tidigits/dhd.2934z.raw",
            "two nine three four zero",
            f"{deb} {root / 'tidigits/dhd.2934z.raw'}",
            "CMU Sphinx tidigits test recording",
            LICENSE,
            "TIDIGITS file naming (2934z = two nine three four zero; tidigits.lsn spells the same string)",
            raw=True,
        )
    )
    for skipped in ("numbers.raw", "something.raw"):
        result.dropped.append(
            Dropped(f"pocketsphinx-testdata {skipped}", "no transcript asserted anywhere in the package")
        )
    return result
