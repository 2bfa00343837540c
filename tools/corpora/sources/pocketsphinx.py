"""pocketsphinx sdist: the "forever" recording, with the text its alignment test aligns to it."""

from __future__ import annotations

import re
from pathlib import Path

from tools.corpora.common import BuildError, sdist_dir, sdist_label
from tools.corpora.plan import RealItem, RealPlan

PACKAGE = "pocketsphinx"
ASSERTION = re.compile(
    r'set_align_text\("([^"]+)"\)\s*\n\s*with wave\.open\(\s*os\.path\.join\(DATADIR, "forever", "input_2_16k\.wav"\)'
)


def forever_transcript(test_source: str) -> str:
    """The ``set_align_text("...")`` argument directly followed by the opening of forever/input_2_16k.wav in
    cython/test/alignment_test.py."""
    m = ASSERTION.search(test_source)
    if not m:
        raise BuildError("pocketsphinx cython/test/alignment_test.py: the forever assertion was not found")
    return m.group(1)


def plan(work: Path, fetch: bool) -> RealPlan:
    psx = sdist_dir(work, PACKAGE, fetch=fetch)
    pspkg = sdist_label(PACKAGE)
    test = (psx / "cython" / "test" / "alignment_test.py").read_text()
    item = RealItem(
        "ps-forever",
        psx / "test" / "data" / "forever" / "input_2_16k.wav",
        forever_transcript(test),
        f"{pspkg} test/data/forever/input_2_16k.wav",
        "pocketsphinx alignment test recording",
        "BSD-2-Clause (pocketsphinx LICENSE)",
        f"{pspkg} cython/test/alignment_test.py",
    )
    return RealPlan(items=[item])
