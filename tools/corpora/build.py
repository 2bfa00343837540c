"""The driver and command line: every corpus in dependency order, a summary, and ``--check`` (rebuild and compare)."""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
import tempfile
from pathlib import Path

import tools.corpora
from tools.corpora.calibration import build_calibration, calibration_groups, check_calibration_disjoint
from tools.corpora.common import (
    BUILT_BY,
    DEFAULT_OUT,
    DEFAULT_WORK,
    TEXTS_DIR,
    TOOL_PACKAGES,
    BuildError,
    ensure_apt,
    tool_versions,
)
from tools.corpora.noise import NOISE_SECONDS, build_noise
from tools.corpora.noisy import MIX_PLAN, READ_MIX_PLAN, build_noisy, describe
from tools.corpora.real import build_real
from tools.corpora.synth import build_synth_clean, synth_groups

CORPORA = ("read-clean", "read-other", "hard", "synth-clean", "synth-other", "calibration")
RETIRED = ("real-clean", "real-other")  # replaced by read-clean, read-other and hard; removed from --out


def build(out: Path, work: Path, *, fetch: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    debs = ensure_apt(fetch=fetch)
    versions = tool_versions(debs)
    tools = {p: debs[p] for p in TOOL_PACKAGES}
    for name in (*CORPORA, "noise", *RETIRED):
        if (out / name).exists():
            shutil.rmtree(out / name)

    real, dropped = build_real(out, work, debs, {"sox": tools["sox"]}, fetch)

    synth_texts = synth_groups(TEXTS_DIR)
    calib_texts = calibration_groups(TEXTS_DIR)
    check_calibration_disjoint(calib_texts, synth_texts)
    synth = build_synth_clean(out, work, synth_texts, tools, versions)
    calib = build_calibration(out, work, calib_texts, tools, versions)

    tracks = build_noise(out, work, calib, tools)
    build_noisy(
        out, "read-clean", "read-other", describe("read-clean", READ_MIX_PLAN), real, tracks, tools, READ_MIX_PLAN
    )
    build_noisy(out, "synth-clean", "synth-other", describe("synth-clean", MIX_PLAN), synth, tracks, tools, MIX_PLAN)
    return {"dropped": dropped}


def summary_row(name: str, manifest: dict, size: int) -> str:
    """One line of the summary from a corpus manifest's utterance rows: count, words, minutes, MB on disk."""
    utts = manifest["utterances"]
    return (
        f"{name:<13} {len(utts):>10} {sum(len(u['text'].split()) for u in utts):>7} "
        f"{sum(u['duration'] for u in utts) / 60:>8.2f} {size / 1e6:>6.2f}"
    )


def summary(out: Path) -> str:
    rows = ["corpus        utterances   words  minutes     MB"]
    for name in CORPORA:
        m = json.loads((out / name / "manifest.json").read_text(encoding="utf-8"))
        size = sum(p.stat().st_size for p in (out / name).rglob("*") if p.is_file())
        rows.append(summary_row(name, m, size))
    size = sum(p.stat().st_size for p in (out / "noise").rglob("*") if p.is_file())
    rows.append(f"{'noise':<13} {'':>10} {'':>7} {2 * NOISE_SECONDS / 60:>8.2f} {size / 1e6:>6.2f}")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    rows.append(f"total size {total / 1e6:.2f} MB")
    return "\n".join(rows)


def compare_trees(a: Path, b: Path) -> list[str]:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    diffs = [f"only in {a}: {p}" for p in sorted(files_a - files_b)] + [
        f"only in {b}: {p}" for p in sorted(files_b - files_a)
    ]
    diffs += [f"differs: {p}" for p in sorted(files_a & files_b) if not filecmp.cmp(a / p, b / p, shallow=False)]
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=BUILT_BY, description=tools.corpora.__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="corpora directory to (re)write (default: %(default)s)"
    )
    parser.add_argument(
        "--work", type=Path, default=DEFAULT_WORK, help="download and scratch cache (default: %(default)s)"
    )
    parser.add_argument("--no-fetch", action="store_true", help="fail instead of running apt-get or pip download")
    parser.add_argument(
        "--check",
        action="store_true",
        help="rebuild into a scratch directory and compare it byte for byte with --out (writes nothing there)",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            with tempfile.TemporaryDirectory(prefix="corpora-check-") as tmp:
                build(Path(tmp), args.work, fetch=not args.no_fetch)
                diffs = compare_trees(args.out, Path(tmp))
            for line in diffs:
                print(line)
            print(
                "reproducible: the rebuild is byte-identical"
                if not diffs
                else f"NOT reproducible: {len(diffs)} differences"
            )
            return 1 if diffs else 0
        result = build(args.out, args.work, fetch=not args.no_fetch)
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for d in result["dropped"]:
        print(f"dropped {d.what}: {d.why}")
    print(summary(args.out))
    return 0
