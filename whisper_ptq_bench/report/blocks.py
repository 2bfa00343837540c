"""The report as a document: blocks (headings, paragraphs, tables, bullet lists, images) built once from the
results, so that every output format (:mod:`.markdown`, :mod:`.html`) says the same thing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from whisper_ptq_bench.report.analysis import by_model_and_family, corpus_family, order_configs
from whisper_ptq_bench.report.fmt import DASH, fmt_ci, fmt_num, fmt_pct, fmt_points, listed
from whisper_ptq_bench.report.load import Case, Results, number, strings

DEFAULT_TITLE = "Whisper post-training quantization benchmark"
LIBRARY_NAMES = {
    "none": "fp32 (reference)",
    "torch-ao": "PyTorch (torch.ao)",
    "torchao": "torchao",
    "quanto": "Optimum-Quanto",
    "hqq": "HQQ",
    "bnb": "bitsandbytes",
}


@dataclass
class Cell:
    text: str
    warn: bool = False
    code: bool = False
    numeric: bool = False


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str
    warn: bool = False


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]]


@dataclass
class Bullets:
    items: list[tuple[str, list[str]]]  # (item, sub-items)
    code: bool = False  # items are identifiers (shown as code)


@dataclass
class Image:
    path: str
    alt: str


Block = Heading | Para | Table | Bullets | Image


# --------------------------------------------------------------------------- tables and sections


def _code(text: str) -> Cell:
    return Cell(text, code=True)


def _num(text: str, warn: bool = False) -> Cell:
    return Cell(text, warn=warn, numeric=True)


def _library(backend: str) -> str:
    return LIBRARY_NAMES.get(backend, backend or DASH)


def _axis(value) -> str:
    return DASH if value in (None, "", "-") else str(value)


def _scheme(axes: dict) -> str:
    scheme = str(axes.get("scheme") or DASH)
    activation = axes.get("activation")
    if activation and activation != "-":
        scheme += f" ({activation} act.)"
    return scheme


def _bits(axes: dict) -> str:
    bits, weight = axes.get("bits"), axes.get("weight")
    if bits is None and not weight:
        return DASH
    return f"{bits} ({weight})" if weight else str(bits)


def _verdict_cell(case: Case) -> Cell:
    verdict = case.verdict
    if verdict == "pass":
        text = (case.comparison or "pass") + (" (warnings)" if case.warnings else "")
        return Cell(text)
    return Cell("✗ regressed" if verdict == "fail" else "✗ error", warn=True)


def results_table(cases: Sequence[Case], sort: str = "config") -> Table:
    """The per-corpus table: axes, WER and its change against fp32, size, compression, speed."""
    by_config = {c.config: c for c in cases}
    rows = []
    for cid in order_configs(list(by_config), sort):
        c = by_config[cid]
        axes, delta = c.axes, c.delta
        method = _axis(axes.get("method"))
        options = axes.get("options")
        if isinstance(options, dict) and options:
            method += " (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")"
        granularity = _axis(axes.get("granularity"))
        if cid == "fp32":
            d_cell, ci_cell = _num("reference"), _num(DASH)
        else:
            d = number(delta.get("delta"))
            ci = delta.get("ci95")
            worse = isinstance(ci, list | tuple) and len(ci) == 2 and (number(ci[0]) or 0) > 0
            d_cell = _num(fmt_points(d), warn=worse)
            ci_cell = _num(fmt_ci(ci))
        rows.append(
            [
                _code(cid),
                Cell(_library(c.backend)),
                Cell(_scheme(axes)),
                Cell(method),
                Cell(granularity),
                Cell(_bits(axes)),
                _num(fmt_pct(c.wer)),
                d_cell,
                ci_cell,
                _num(fmt_num(c.size_mb, ".2f")),
                _num(fmt_pct(c.info.get("compression"), 1)),
                _num(fmt_pct(c.weight_error, 2)),
                _num(fmt_num(c.kl, ".4f")),
                _num(fmt_num(c.info.get("rtf"), ".3g")),
                _num(fmt_num(c.kernel_speedup, ".2f", "×")),
                _num(fmt_num(c.speedup, ".2f", "×")),
                _verdict_cell(c),
            ]
        )
    headers = [
        "Config",
        "Library",
        "Scheme",
        "Method",
        "Granularity",
        "Bits (format)",
        "WER",
        "Δ WER vs fp32 (pts)",
        "95% CI (pts)",
        "Size (MB)",
        "Compression",
        "Weight error",
        "KL vs fp32",
        "RTF",
        "Kernel speed-up",
        "E2E speed-up",
        "Verdict",
    ]
    return Table(headers, rows)


def clean_other_table(clean: Sequence[Case], other: Sequence[Case], sort: str = "config") -> Table:
    c_by, o_by = {c.config: c for c in clean}, {c.config: c for c in other}
    rows = []
    for cid in order_configs([*c_by, *o_by], sort):
        wc = c_by[cid].wer if cid in c_by else None
        wo = o_by[cid].wer if cid in o_by else None
        increase = wo - wc if wc is not None and wo is not None else None
        ratio = f"{wo / wc:.2f}×" if wc and wo is not None else DASH
        rows.append([_code(cid), _num(fmt_pct(wc)), _num(fmt_pct(wo)), _num(fmt_points(increase)), _num(ratio)])
    return Table(["Config", "WER clean", "WER other", "Increase (pts)", "Ratio other/clean"], rows)


def scope_table(cases: Sequence[Case], sort: str = "config") -> Table:
    """Per config: what the library quantized and kept in float; beyond-scope and missed modules flagged."""
    by_config: dict[str, Case] = {}
    for c in cases:
        if c.scope and c.config not in by_config:
            by_config[c.config] = c
    rows = []
    for cid in order_configs(list(by_config), sort):
        s = by_config[cid].scope
        formats = s.get("formats") if isinstance(s.get("formats"), dict) else {}
        kinds = s.get("float_kinds") if isinstance(s.get("float_kinds"), dict) else {}
        beyond, missed = strings(s.get("beyond_scope")), strings(s.get("missed"))
        float_modules = str(s["float_modules"]) if isinstance(s.get("float_modules"), int) else DASH
        if kinds:
            float_modules += " (" + ", ".join(f"{k} {n}" for k, n in kinds.items()) + ")"
        rows.append(
            [
                _code(cid),
                _num(str(s["quantized_modules"]) if isinstance(s.get("quantized_modules"), int) else DASH),
                _num(fmt_num(_scaled(s.get("quantized_params"), 1e-6), ".2f")),
                Cell(", ".join(f"{f} ×{n}" for f, n in formats.items()) or DASH),
                Cell(float_modules),
                _num(fmt_num(_scaled(s.get("float_params"), 1e-6), ".2f")),
                Cell("⚠ " + listed(beyond), warn=True) if beyond else Cell(DASH),
                Cell("⚠ " + listed(missed), warn=True) if missed else Cell(DASH),
            ]
        )
    headers = [
        "Config",
        "Quantized modules",
        "Quantized params (M)",
        "Formats",
        "Float modules",
        "Float params (M)",
        "Beyond scope",
        "Missed (in scope, left float)",
    ]
    return Table(headers, rows)


def _scaled(value, factor: float):
    x = number(value)
    return None if x is None else x * factor


def _corpus_line(cases: Sequence[Case]) -> str:
    for c in cases:
        info = c.info.get("corpus")
        if isinstance(info, dict):
            bits = []
            if isinstance(info.get("utterances"), int):
                bits.append(f"{info['utterances']} utterances")
            if isinstance(info.get("words"), int):
                bits.append(f"{info['words']} words")
            if number(info.get("minutes")) is not None:
                bits.append(f"{info['minutes']:.{1 if info['minutes'] >= 1 else 2}f} min of audio")
            if info.get("hash"):
                bits.append(f"hash {info['hash']}")
            if bits:
                return ", ".join(bits) + "."
    return ""


def _fp32_line(cases: Sequence[Case]) -> str:
    ref = next((c for c in cases if c.config == "fp32" and c.wer is not None), None)
    if ref is not None:
        return f"fp32 WER {fmt_pct(ref.wer)}, RTF {fmt_num(ref.info.get('rtf'), '.3g')}, size {fmt_num(ref.size_mb, '.2f')} MB."
    fp32 = next((number(c.delta.get("fp32_wer")) for c in cases if number(c.delta.get("fp32_wer")) is not None), None)
    if fp32 is not None:
        return f"fp32 WER {fmt_pct(fp32)} (the fp32 case is not in these results)."
    return "No fp32 reference in these results: differences against fp32 are unavailable."


def environment_blocks(results: Results) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Environment")]
    envs = results.environments
    if not envs:
        blocks.append(Para("No case recorded its environment."))
    else:
        keys = list(dict.fromkeys(k for env, _ in envs for k in env))
        rows = []
        for key in keys:
            values = [env.get(key) for env, _ in envs]
            differs = len({json.dumps(v, sort_keys=True) for v in values}) > 1
            rows.append([Cell(key)] + [Cell(DASH if v is None else str(v), warn=differs) for v in values])
        headers = ["Key"] + ([f"Environment {i + 1}" for i in range(len(envs))] if len(envs) > 1 else ["Value"])
        if len(envs) > 1:
            differing = [r[0].text for r in rows if r[1].warn]
            blocks.append(
                Para(
                    f"⚠ The results come from {len(envs)} different environments (differing: {', '.join(differing)}); "
                    "timings and transcripts from different environments are not directly comparable.",
                    warn=True,
                )
            )
        blocks.append(Table(headers, rows))
        if len(envs) > 1:
            blocks.append(
                Bullets([(f"Environment {i + 1}: " + ", ".join(files), []) for i, (_, files) in enumerate(envs)])
            )
    batchings = sorted({c.batching for c in results.cases if c.batching})
    if len(batchings) == 1:
        blocks.append(Para(f"Batching: {batchings[0]}."))
    elif batchings:
        blocks.append(
            Para(
                f"⚠ The cases were transcribed with {len(batchings)} different batchings ({'; '.join(batchings)}); "
                "batch composition changes what dynamically quantized models output.",
                warn=True,
            )
        )
    rows = []
    for shard in results.shards:
        m, commit = shard.machine, shard.commit
        cpu = m.get("cpu") if isinstance(m.get("cpu"), dict) else {}
        rev = str(commit.get("id") or "")[:12]
        if rev and commit.get("dirty"):
            rev += " (dirty)"
        if rev and commit.get("branch"):
            rev += f" on {commit['branch']}"
        rows.append(
            [
                _code(shard.path),
                Cell(shard.datetime or DASH),
                Cell(str(m.get("node") or DASH)),
                Cell(str(cpu.get("brand_raw") or m.get("processor") or m.get("machine") or DASH)),
                Cell(rev or DASH),
                _num(str(len(shard.cases))),
            ]
        )
    blocks.append(Heading(3, "Results files"))
    blocks.append(Table(["File", "Run at", "Machine", "CPU", "Commit", "Cases"], rows))
    return blocks


def changes_blocks(results: Results) -> list[Block]:
    live = any(isinstance(c.info.get("reference"), dict) for c in results.cases)
    blocks: list[Block] = [
        Heading(2, "Changes against the reference environment" if live else "Changes against the baselines")
    ]
    measured = [c for c in results.cases if c.measured]
    statuses = Counter(str(c.info.get("baseline") or "unknown") for c in measured)
    if statuses:
        blocks.append(
            Para(
                "Baseline status of the measured cases: "
                + ", ".join(f"{n} {s}" for s, n in statuses.most_common())
                + "."
            )
        )
    verdicts = Counter(c.comparison for c in measured if c.comparison)
    if verdicts:
        blocks.append(
            Para(
                f"{verdicts['identical']} identical, {verdicts['changed']} changed, {verdicts['regressed']} regressed "
                "(identical: bit-equal weights and outputs; changed: moved within tolerance, improvements included; "
                "regressed: a check failed)."
            )
        )
    changed = [c for c in measured if c.comparison == "changed" and c.changes]
    if changed:
        blocks.append(Heading(3, "What changed (within tolerance)"))
        blocks.append(Bullets([(c.case_id, c.changes) for c in changed], code=True))
    failing = [c for c in measured if c.verdict == "fail"]
    blocks.append(Heading(3, "Failed checks"))
    if failing:
        blocks.append(Bullets([(c.case_id, c.failures or ["verdict: fail"]) for c in failing], code=True))
    else:
        blocks.append(Para("No measured case failed a baseline check."))
    warned = [c for c in measured if c.warnings]
    blocks.append(Heading(3, "Warnings"))
    if warned:
        blocks.append(Bullets([(c.case_id, c.warnings) for c in warned], code=True))
    else:
        blocks.append(Para("No warnings."))
    radar: dict[str, list[str]] = {}
    for c in results.cases:
        for w in c.library_warnings:
            radar.setdefault(w, []).append(c.case_id)
    blocks.append(Heading(3, "Library warnings (the next upgrade's breakage)"))
    if radar:
        blocks.append(
            Bullets(
                [
                    (w, [f"{len(ids)} case(s): " + ", ".join(ids[:4]) + (" ..." if len(ids) > 4 else "")])
                    for w, ids in sorted(radar.items())
                ],
                code=False,
            )
        )
    else:
        blocks.append(Para("The quantization stack emitted no warning during the cases."))
    return blocks


def failed_blocks(results: Results) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Failed, errored and skipped cases")]
    items = []
    for c in results.cases:
        if c.verdict == "pass":
            continue
        if c.verdict == "fail":
            items.append((c.case_id, [f"failed {len(c.failures) or 1} baseline check(s), see above ({c.source})"]))
            continue
        if c.verdict == "skipped":
            items.append((c.case_id, [f"skipped: {c.info.get('reason') or 'no reason given'} ({c.source})"]))
            continue
        known = [f"errored before it was measured (no WER recorded; from {c.source}, benchmark {c.name})"]
        if isinstance(c.info.get("error"), str) and c.info["error"]:
            known.append(c.info["error"])
        median = number(c.stats.get("median"))
        if median is not None:
            known.append(f"timed transcription median {median:.3g} s over {c.stats.get('rounds', '?')} round(s)")
        if c.size_mb is not None:
            known.append(f"size {c.size_mb:.2f} MB")
        known += c.failures
        items.append((c.case_id, known))
    if items:
        blocks.append(Bullets(items, code=True))
    else:
        blocks.append(Para("None: every case was measured and passed its checks."))
    return blocks


def build(
    results: Results, title: str = DEFAULT_TITLE, plots: dict[tuple[str, str], str] | None = None, sort: str = "config"
) -> list[Block]:
    """The report as blocks; ``plots`` maps (model, corpus family) to a plot's relative path."""
    plots = plots or {}
    cases = results.cases
    counts = Counter(c.verdict for c in cases)
    blocks: list[Block] = [Heading(1, title)]
    blocks.append(
        Para(
            f"{len(cases)} cases from {len(results.shards)} results file(s): {counts['pass']} passed, "
            f"{counts['fail']} failed baseline checks, {counts['error']} errored before measuring, "
            f"{counts['skipped']} skipped. "
            "WER is in percent of reference words; Δ is the WER difference to fp32 on the same corpus in "
            "percentage points, with its paired-bootstrap 95% interval; compression is the fraction of the fp32 "
            "serialized size saved; speed-up is fp32 transcription time over the config's."
        )
    )
    if len(results.environments) > 1:
        blocks.append(
            Para(
                f"⚠ The results come from {len(results.environments)} different environments; see Environment.",
                warn=True,
            )
        )
    for group in by_model_and_family(cases):
        model, mcases = group.model, group.cases
        blocks.append(Heading(2, f"Model {model}"))
        for family, members in group.families.items():
            blocks.append(
                Heading(3, f"{model} · {family}" + (f" ({', '.join(members)})" if members != [family] else ""))
            )
            if (model, family) in plots:
                blocks.append(
                    Image(plots[(model, family)], f"WER change against compression for {model} on {', '.join(members)}")
                )
            for corpus in members:
                ccases = [c for c in mcases if c.corpus == corpus]
                blocks.append(Heading(4, f"Corpus {corpus}"))
                line = " ".join(p for p in (_corpus_line(ccases), _fp32_line(ccases)) if p)
                blocks.append(Para(line))
                blocks.append(results_table(ccases, sort))
            parts = {corpus_family(n)[1]: n for n in members}
            if "clean" in parts and "other" in parts:
                blocks.append(Heading(4, f"Clean against other ({parts['clean']} / {parts['other']})"))
                blocks.append(
                    clean_other_table(
                        [c for c in mcases if c.corpus == parts["clean"] and c.measured],
                        [c for c in mcases if c.corpus == parts["other"] and c.measured],
                        sort,
                    )
                )
        blocks.append(Heading(3, f"{model} · quantization scope"))
        table = scope_table(mcases, sort)
        if table.rows:
            flagged = sum(1 for r in table.rows if r[6].warn or r[7].warn)
            if flagged:
                blocks.append(
                    Para(
                        f"⚠ {flagged} config(s) quantized modules beyond the scope or missed modules in it.", warn=True
                    )
                )
            blocks.append(table)
        else:
            blocks.append(Para("No case recorded its scope."))
    blocks += changes_blocks(results)
    blocks += environment_blocks(results)
    blocks += failed_blocks(results)
    return blocks
