"""Writing what a run measured: baselines.json in an update run (this machine profile's part), the obtained file
for cases without a baseline or when the baselines cannot be written, and the inputs an update may not replace."""

from __future__ import annotations

from typing import TYPE_CHECKING

from whisper_ptq_bench import baselines as bl
from whisper_ptq_bench import speed as sp
from whisper_ptq_bench.backends import get_backend
from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.data import load_corpus
from whisper_ptq_bench.errors import BaselineError, BenchError
from whisper_ptq_bench.record import CaseRecord
from whisper_ptq_bench.result import split

if TYPE_CHECKING:
    from whisper_ptq_bench.runner import Options


def entries(harness, records: list[CaseRecord]) -> list[tuple]:
    """Baseline entries of ``records``; each case's speed is the configuration's pooled rounds of the whole
    session (every case of a configuration times the same workload on the same quantized model)."""
    out = []
    for record in records:
        r = record.result
        entry = r.entry()
        pooled = harness.timings.get((r.model, r.config))
        if pooled is not None:
            entry["speed"] = sp.Speed.measured(pooled).entry()
        portable, bound = split(entry, get_backend(r.config.backend).kernel_dependent(r.config))
        out.append((r.case_id, portable, bound, r.environment, (harness.profile, harness.machine)))
    return out


def finish(harness, interrupted: bool = False) -> list[str]:
    """Write baselines (update flow) or the obtained file; returns lines for the session summary.

    An interrupted update writes nothing into the baselines (a half-finished matrix is not a baseline) and
    a failed write is an error; in both cases what was measured is left in the obtained file."""
    lines = []
    done = [c for c in harness.results if c.result.transcripts is not None and not c.result.error]
    if not done:
        return lines
    obtained = harness.options.obtained_path
    if harness.options.update_baselines and interrupted:
        bl.update(obtained, entries(harness, done))
        return [
            f"interrupted: {harness.options.baselines_path} left untouched; the {len(done)} case(s) measured are in {obtained}"
        ]
    if harness.options.update_baselines:
        try:
            bl.update(harness.options.baselines_path, entries(harness, done))
        except (BenchError, OSError) as err:
            for c in done:
                c.status = "not written"
            bl.update(obtained, entries(harness, done))
            raise BaselineError(
                f"the baselines could not be written ({err}); the {len(done)} measured case(s) are in {obtained}"
            ) from None
        lines.append(
            f"updated {len(done)} case(s) in {harness.options.baselines_path} (machine profile {harness.profile})"
        )
    missing = [c for c in done if c.status == "missing"]
    if missing:
        bl.update(obtained, entries(harness, missing))
        lines.append(f"{len(missing)} case(s) without a baseline written to {obtained}")
    return lines


def changed_inputs(options: Options, cases: list[tuple[str, str, QuantConfig]], data: dict) -> list[str]:
    """Cases an update would re-record on other inputs than their baseline's: another corpus subset (or corpus
    content) or another batching. Such a replacement needs ``--ptq-replace-inputs``."""
    out, hashes = [], {}
    for model, corpus, config in cases:
        entry = data.get("cases", {}).get(bl.case_id(model, corpus, config))
        if not entry:
            continue
        if corpus not in hashes:
            c = load_corpus(corpus, options.max_utterances or None)
            hashes[corpus] = (c.summary()["hash"], len(c))
        digest, n = hashes[corpus]
        if entry.get("corpus_hash") not in (None, digest):
            out.append(
                f"{bl.case_id(model, corpus, config)}: corpus {corpus} differs ({n} utterance(s) now; "
                f"--ptq-max-utterances {options.max_utterances or 0})"
            )
        elif entry.get("batching") not in (None, options.batching):
            out.append(f"{bl.case_id(model, corpus, config)}: batching {entry['batching']!r} -> {options.batching!r}")
    return out
