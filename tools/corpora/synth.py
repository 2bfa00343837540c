"""Synthetic speech: the six flite and festival voices, the project's texts, and the ``synth-clean`` corpus."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tools.corpora.common import TEXTS_DIR, BuildError, clean_entry, run, to_flac, write_manifest

MAX_SYNTH_SECONDS = 25.0
FLITE_LICENSE = "voice: CMU Flite licence (BSD-style, attribution; CMU ARCTIC data)"
TEXT_LICENSE = "text: MIT (written for this project)"
DESCRIPTION = "The project's own English sentences spoken by six flite and festival voices"


@dataclass(frozen=True)
class Voice:
    name: str  # the manifest's speaker
    engine: str  # flite | festival
    arg: str  # flite -voice NAME, or the festival voice function
    source: str
    license: str


VOICES = (
    Voice("flite-slt", "flite", "slt", "flite {flite} voice slt (CMU ARCTIC slt, US female)", FLITE_LICENSE),
    Voice("flite-rms", "flite", "rms", "flite {flite} voice rms (CMU ARCTIC rms, US male)", FLITE_LICENSE),
    Voice("flite-awb", "flite", "awb", "flite {flite} voice awb (CMU ARCTIC awb, Scottish male)", FLITE_LICENSE),
    Voice(
        "festival-kal",
        "festival",
        "voice_kal_diphone",
        "festival {festival} voice_kal_diphone (festvox-kallpc16k {festvox-kallpc16k}, US male diphones)",
        "voice: festvox-kallpc16k licence (Black and Lenzo 1998, BSD-style)",
    ),
    Voice(
        "festival-slt-hts",
        "festival",
        "voice_cmu_us_slt_arctic_hts",
        "festival {festival} voice_cmu_us_slt_arctic_hts (festvox-us-slt-hts {festvox-us-slt-hts}, US female HMM)",
        "voice: EST-2003 (CMU ARCTIC) and BSD-3-Clause (HTS)",
    ),
    Voice("flite-kal16", "flite", "kal16", "flite {flite} voice kal16 (US male diphones)", FLITE_LICENSE),
)


# --- texts ------------------------------------------------------------------------------------------


def parse_groups(text: str) -> list[list[str]]:
    """Utterances of a text file: sentences one per line, a blank line ends an utterance; '#' comments."""
    groups, current = [], []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if line.strip():
            current.append(" ".join(line.split()))
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def read_groups(path: Path) -> list[list[str]]:
    return parse_groups(path.read_text(encoding="utf-8"))


def check_synth_groups(groups: list[list[str]]) -> None:
    """Each synth-clean utterance: 2-3 sentences, 15-35 words."""
    for g in groups:
        n = sum(len(s.split()) for s in g)
        if not (2 <= len(g) <= 3 and 15 <= n <= 35):
            raise BuildError(f"synth utterance {g[0]!r}...: {len(g)} sentences, {n} words (want 2-3 and 15-35)")


def synth_groups(texts_dir: Path = TEXTS_DIR) -> list[list[str]]:
    """The utterances of synth-clean (``synth_sentences.txt``), checked."""
    groups = read_groups(texts_dir / "synth_sentences.txt")
    check_synth_groups(groups)
    return groups


# --- speech -----------------------------------------------------------------------------------------


def synth_jobs(groups: list[list[str]], prefix: str) -> list[tuple[str, Voice, str]]:
    """(utterance id, voice, text) per group: voices round-robin, ids ``prefix-NN`` numbered from 1 with at least
    two digits."""
    jobs = []
    for i, sentences in enumerate(groups):
        voice = VOICES[i % len(VOICES)]
        utt_id = f"{prefix}-{i + 1:0{max(2, len(str(len(groups))))}d}"
        jobs.append((utt_id, voice, " ".join(sentences)))
    return jobs


def speak(voice: Voice, text: str, wav: Path) -> None:
    wav.parent.mkdir(parents=True, exist_ok=True)
    txt = wav.with_suffix(".txt")
    txt.write_text(text + "\n", encoding="utf-8")
    if voice.engine == "flite":
        run(["flite", "-voice", voice.arg, "-f", str(txt), "-o", str(wav)])
    else:
        run(["text2wave", "-eval", f"({voice.arg})", str(txt), "-o", str(wav)])


def build_synth(
    out: Path,
    work: Path,
    name: str,
    description: str,
    groups: list[list[str]],
    prefix: str,
    tools: dict,
    versions: dict[str, str],
) -> list[dict]:
    corpus = out / name
    scratch = work / "tts" / name
    jobs = synth_jobs(groups, prefix)

    def make(job):
        utt_id, voice, text = job
        wav = scratch / f"{utt_id}.wav"
        speak(voice, text, wav)
        to_flac(wav, corpus / "audio" / f"{utt_id}.flac")

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        list(pool.map(make, jobs))
    entries = []
    for utt_id, voice, text in jobs:
        entry = clean_entry(
            corpus, utt_id, text, voice.source.format(**versions), f"{TEXT_LICENSE}; {voice.license}", voice.name
        )
        if entry["duration"] > MAX_SYNTH_SECONDS:
            raise BuildError(f"{utt_id}: {entry['duration']} s is over {MAX_SYNTH_SECONDS} s")
        entries.append(entry)
    write_manifest(corpus, name, description, "file", tools, entries)
    return entries


def build_synth_clean(
    out: Path, work: Path, groups: list[list[str]], tools: dict, versions: dict[str, str]
) -> list[dict]:
    return build_synth(out, work, "synth-clean", DESCRIPTION, groups, "synth", tools, versions)
