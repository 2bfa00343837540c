"""Reports from pytest-benchmark results: ``whisper-ptq-bench report RESULTS... --out DIR``.

The input is the JSON that ``pytest benchmarks/ --benchmark-only --benchmark-json=FILE`` writes: one
file per run, or one per shard of a run (the shards are merged). Every benchmark entry carries the
case's ``extra_info`` (see ``CaseResult.extra_info``); a case that failed before it was measured may
carry little or none of it and is reported as errored with whatever its entry says.

The output directory receives ``report.md`` (GitHub-flavoured), ``report.html`` (self-contained apart
from the plots, which it references by relative path) and one Pareto plot (size against WER) per
model and corpus family. The report is built once as a list of blocks and rendered twice, so the
Markdown and the HTML say the same thing.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import re
import statistics
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from whisper_ptq_bench.errors import BenchError

DEFAULT_TITLE = "Whisper post-training quantization benchmark"
SORTS = ("config", "library")
LIBRARY_NAMES = {
    "none": "fp32 (reference)",
    "torch-ao": "PyTorch (torch.ao)",
    "torchao": "torchao",
    "quanto": "Optimum-Quanto",
    "hqq": "HQQ",
    "bnb": "bitsandbytes",
}
DASH = "—"
_MAX_NAMES = 5


class ReportError(BenchError):
    """A results file is missing, unreadable or not pytest-benchmark output, or shards disagree."""


# --------------------------------------------------------------------------- input


@dataclass
class Case:
    """One benchmark entry: a ``{model}/{corpus}/{config}`` case and what is known of it."""

    case_id: str
    model: str
    corpus: str
    config: str
    source: str
    name: str = ""
    info: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    entry: dict = field(default_factory=dict, repr=False)

    @property
    def measured(self) -> bool:
        return _number(self.info.get("wer")) is not None

    @property
    def verdict(self) -> str:
        """``pass``, ``fail`` (baseline checks failed) or ``error`` (not measured)."""
        if not self.measured:
            return "error"
        return "fail" if self.info.get("verdict") == "fail" or self.failures else "pass"

    @property
    def failures(self) -> list[str]:
        return _strings(self.info.get("failures"))

    @property
    def warnings(self) -> list[str]:
        return _strings(self.info.get("warnings"))

    @property
    def axes(self) -> dict:
        axes = self.info.get("axes")
        if isinstance(axes, dict) and axes:
            return axes
        return axes_from_id(self.config)

    @property
    def backend(self) -> str:
        return str(self.axes.get("backend") or self.config.split(".", 1)[0])

    @property
    def wer(self) -> float | None:
        return _number(self.info.get("wer"))

    @property
    def size_mb(self) -> float | None:
        size = _number(self.info.get("size_mb"))
        if size is None and _number(self.info.get("size_bytes")):
            size = self.info["size_bytes"] / 1e6
        return size

    @property
    def speedup(self) -> float | None:
        return _number(self.info.get("speedup_vs_fp32"))

    @property
    def kernel_speedup(self) -> float | None:
        """Speed-up over fp32 on the fixed workload, interleaved rounds (the gated speed)."""
        return _number(self.info.get("kernel_speedup_vs_fp32"))

    @property
    def weight_error(self) -> float | None:
        return _number(self.info.get("weight_error_mean"))

    @property
    def kl(self) -> float | None:
        output = self.info.get("output")
        return _number(output.get("kl")) if isinstance(output, dict) else None

    @property
    def library_warnings(self) -> list[str]:
        return _strings(self.info.get("library_warnings"))

    @property
    def delta(self) -> dict:
        delta = self.info.get("wer_delta_vs_fp32")
        return delta if isinstance(delta, dict) else {}

    @property
    def environment(self) -> dict:
        env = self.info.get("environment")
        return env if isinstance(env, dict) else {}

    @property
    def batching(self) -> str:
        batching = self.info.get("batching")
        return batching if isinstance(batching, str) else ""

    @property
    def scope(self) -> dict:
        scope = self.info.get("scope")
        return scope if isinstance(scope, dict) else {}


@dataclass
class Shard:
    """One results file."""

    path: str
    cases: list[Case]
    machine: dict = field(default_factory=dict)
    commit: dict = field(default_factory=dict)
    datetime: str = ""
    version: str = ""

    @property
    def environments(self) -> list[dict]:
        """The distinct case environments of this file, most common first."""
        counts = Counter(_freeze(c.environment) for c in self.cases if c.environment)
        return [dict(env) for env, _ in counts.most_common()]


@dataclass
class Results:
    """The merged cases of one or more shards, in the order they were first seen."""

    shards: list[Shard]
    cases: list[Case]

    @property
    def environments(self) -> list[tuple[dict, list[str]]]:
        """Distinct environments and the files that used each, in order of appearance."""
        seen: dict[tuple, list[str]] = {}
        for shard in self.shards:
            for env in shard.environments:
                files = seen.setdefault(_freeze(env), [])
                if shard.path not in files:
                    files.append(shard.path)
        return [(dict(env), files) for env, files in seen.items()]


def split_case_id(case_id: str) -> tuple[str, str, str]:
    """``{model}/{corpus}/{config}`` -> parts; the model may itself contain slashes (hub ids)."""
    parts = case_id.rsplit("/", 2)
    if len(parts) < 3:
        return ("", "", case_id) if len(parts) == 1 else ("", parts[0], parts[1])
    return parts[0], parts[1], parts[2]


def axes_from_id(config_id: str) -> dict:
    """The axes of a config id (for cases without extra_info); empty when the id does not parse."""
    from whisper_ptq_bench.configs import QuantConfig

    try:
        return QuantConfig.from_id(config_id).axes()
    except (BenchError, ValueError, TypeError, KeyError):
        return {}


def _case_from_entry(entry: dict, source: str) -> Case:
    name = str(entry.get("name", ""))
    info = entry.get("extra_info") if isinstance(entry.get("extra_info"), dict) else {}
    stats = entry.get("stats") if isinstance(entry.get("stats"), dict) else {}
    case_id = info.get("case")
    if not isinstance(case_id, str) or not case_id:
        param = entry.get("param")
        match = re.search(r"\[(.*)\]$", name)
        case_id = param if isinstance(param, str) and param else (match.group(1) if match else name)
    model, corpus, config = split_case_id(case_id)
    if isinstance(info.get("model"), str) and info["model"]:
        model = info["model"]
    corpus_info = info.get("corpus")
    if isinstance(corpus_info, dict) and isinstance(corpus_info.get("name"), str):
        corpus = corpus_info["name"]
    elif isinstance(corpus_info, str) and corpus_info:
        corpus = corpus_info
    if isinstance(info.get("config"), str) and info["config"]:
        config = info["config"]
    return Case(case_id, model, corpus, config, source, name, info, stats, entry)


def load_results(path: str | os.PathLike) -> Shard:
    """Read one pytest-benchmark JSON file; :class:`ReportError` names the file and the problem."""
    shown = str(path)
    p = Path(path)
    if not p.exists():
        raise ReportError(f"{shown}: no such file")
    if p.is_dir():
        raise ReportError(f"{shown}: is a directory, not a pytest-benchmark JSON file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{shown}: not JSON (not UTF-8 text)") from None
    except OSError as err:
        raise ReportError(f"{shown}: cannot be read ({err.strerror or err})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ReportError(f"{shown}: not JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ReportError(
            f"{shown}: not a pytest-benchmark results file (expected an object with a 'benchmarks' list, "
            "as written by pytest --benchmark-json=FILE)"
        )
    cases = []
    for i, entry in enumerate(data["benchmarks"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ReportError(f"{shown}: benchmarks[{i}] is not a pytest-benchmark entry (no 'name')")
        cases.append(_case_from_entry(entry, shown))
    return Shard(
        path=shown,
        cases=cases,
        machine=data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {},
        commit=data.get("commit_info") if isinstance(data.get("commit_info"), dict) else {},
        datetime=str(data.get("datetime") or ""),
        version=str(data.get("version") or ""),
    )


def merge(shards: Sequence[Shard]) -> Results:
    """Merge the shards of a run. A case in two shards is an error unless both entries are identical."""
    cases: dict[str, Case] = {}
    for shard in shards:
        for case in shard.cases:
            known = cases.get(case.case_id)
            if known is None:
                cases[case.case_id] = case
            elif known.entry != case.entry:
                where = known.source if known.source == case.source else f"{known.source} and {case.source}"
                raise ReportError(
                    f"case {case.case_id} appears twice with different results (in {where}); "
                    "each case must come from one shard: drop one of the files or re-run the case once"
                )
    return Results(list(shards), list(cases.values()))


def load(paths: Iterable[str | os.PathLike]) -> Results:
    """Load and merge results files; every unusable file is named in one :class:`ReportError`."""
    shards, problems = [], []
    for path in paths:
        try:
            shards.append(load_results(path))
        except ReportError as err:
            problems.append(str(err))
    if problems:
        raise ReportError("\n".join(problems))
    return merge(shards)


# --------------------------------------------------------------------------- analysis


def pareto_front(points: Sequence[tuple[float | None, float | None]]) -> list[int]:
    """Indices of the non-dominated points when both coordinates are to be minimized.

    A point is dominated when another is no worse in both coordinates and better in at least one.
    Identical points do not dominate each other, so all copies of a front point are on the front.
    Points with a missing or non-finite coordinate are never on the front. The indices are returned
    in the order of the front: increasing x (then increasing y, then index).
    """
    valid = [i for i, (x, y) in enumerate(points) if _number(x) is not None and _number(y) is not None]

    def dominates(a: tuple, b: tuple) -> bool:
        return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])

    front = [i for i in valid if not any(dominates(points[j], points[i]) for j in valid if j != i)]
    return sorted(front, key=lambda i: (points[i][0], points[i][1], i))


def corpus_family(corpus: str) -> tuple[str, str | None]:
    """``real-clean`` -> (``real``, ``clean``); a corpus without a clean/other suffix is its own family."""
    for part in ("clean", "other"):
        if corpus.endswith(f"-{part}") and len(corpus) > len(part) + 1:
            return corpus[: -len(part) - 1], part
    return corpus, None


def _config_rank() -> dict[str, int]:
    from whisper_ptq_bench.configs import MATRICES

    order: dict[str, int] = {}
    for name in ("full", "default", "smoke"):
        for cid in MATRICES.get(name, []):
            order.setdefault(cid, len(order))
    return order


def order_configs(config_ids: Sequence[str], sort: str = "config") -> list[str]:
    """fp32 first; then the matrix order (``config``) or grouped by library in matrix order (``library``).

    Ids that are in no matrix follow in the order given.
    """
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, not {sort!r}")
    rank = _config_rank()
    unique = list(dict.fromkeys(config_ids))
    position = {cid: (rank.get(cid, len(rank) + i)) for i, cid in enumerate(unique)}
    if sort == "config":
        return sorted(unique, key=lambda c: (c != "fp32", position[c]))
    libraries: dict[str, int] = {}
    for cid in sorted(unique, key=lambda c: position[c]):
        libraries.setdefault(cid.split(".", 1)[0], len(libraries))
    return sorted(unique, key=lambda c: (c != "fp32", libraries[c.split(".", 1)[0]], position[c]))


def _models(results: Results) -> list[str]:
    return list(dict.fromkeys(c.model for c in results.cases))


def _corpora(cases: Sequence[Case]) -> list[str]:
    """Corpora grouped by family (first appearance), clean before other within a family."""
    names = list(dict.fromkeys(c.corpus for c in cases))
    families = list(dict.fromkeys(corpus_family(n)[0] for n in names))
    part_rank = {"clean": 0, None: 1, "other": 2}
    return sorted(names, key=lambda n: (families.index(corpus_family(n)[0]), part_rank[corpus_family(n)[1]], names.index(n)))


# --------------------------------------------------------------------------- formatting


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _freeze(env: dict) -> tuple:
    return tuple((str(k), json.dumps(v, sort_keys=True) if not isinstance(v, str) else v) for k, v in env.items())


def fmt_pct(fraction, digits: int = 2) -> str:
    value = _number(fraction)
    return DASH if value is None else f"{value * 100:.{digits}f}%"


def fmt_points(fraction, digits: int = 2) -> str:
    value = _number(fraction)
    return DASH if value is None else f"{value * 100:+.{digits}f}"


def fmt_ci(ci) -> str:
    if not isinstance(ci, list | tuple) or len(ci) != 2:
        return DASH
    low, high = (_number(v) for v in ci)
    if low is None or high is None:
        return DASH
    return f"[{low * 100:+.2f}, {high * 100:+.2f}]"


def fmt_num(value, spec: str, suffix: str = "") -> str:
    number = _number(value)
    return DASH if number is None else f"{number:{spec}}{suffix}"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    return f"{len(names)}: {shown}" + (f", … (+{len(names) - _MAX_NAMES} more)" if len(names) > _MAX_NAMES else "")


# --------------------------------------------------------------------------- document model


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
        text = "pass" + (" (warnings)" if case.warnings else "")
        return Cell(text)
    return Cell("✗ fail" if verdict == "fail" else "✗ error", warn=True)


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
            d = _number(delta.get("delta"))
            ci = delta.get("ci95")
            worse = isinstance(ci, list | tuple) and len(ci) == 2 and (_number(ci[0]) or 0) > 0
            d_cell = _num(fmt_points(d), warn=worse)
            ci_cell = _num(fmt_ci(ci))
        rows.append([
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
        ])
    headers = [
        "Config", "Library", "Scheme", "Method", "Granularity", "Bits (format)", "WER",
        "Δ WER vs fp32 (pts)", "95% CI (pts)", "Size (MB)", "Compression", "Weight error", "KL vs fp32",
        "RTF", "Kernel speed-up", "E2E speed-up", "Verdict",
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
        beyond, missed = _strings(s.get("beyond_scope")), _strings(s.get("missed"))
        float_modules = str(s["float_modules"]) if isinstance(s.get("float_modules"), int) else DASH
        if kinds:
            float_modules += " (" + ", ".join(f"{k} {n}" for k, n in kinds.items()) + ")"
        rows.append([
            _code(cid),
            _num(str(s["quantized_modules"]) if isinstance(s.get("quantized_modules"), int) else DASH),
            _num(fmt_num(_scaled(s.get("quantized_params"), 1e-6), ".2f")),
            Cell(", ".join(f"{f} ×{n}" for f, n in formats.items()) or DASH),
            Cell(float_modules),
            _num(fmt_num(_scaled(s.get("float_params"), 1e-6), ".2f")),
            Cell("⚠ " + _names(beyond), warn=True) if beyond else Cell(DASH),
            Cell("⚠ " + _names(missed), warn=True) if missed else Cell(DASH),
        ])
    headers = [
        "Config", "Quantized modules", "Quantized params (M)", "Formats", "Float modules", "Float params (M)",
        "Beyond scope", "Missed (in scope, left float)",
    ]
    return Table(headers, rows)


def _scaled(value, factor: float):
    number = _number(value)
    return None if number is None else number * factor


def _corpus_line(cases: Sequence[Case]) -> str:
    for c in cases:
        info = c.info.get("corpus")
        if isinstance(info, dict):
            bits = []
            if isinstance(info.get("utterances"), int):
                bits.append(f"{info['utterances']} utterances")
            if isinstance(info.get("words"), int):
                bits.append(f"{info['words']} words")
            if _number(info.get("minutes")) is not None:
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
    fp32 = next((_number(c.delta.get("fp32_wer")) for c in cases if _number(c.delta.get("fp32_wer")) is not None), None)
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
            blocks.append(Para(
                f"⚠ The results come from {len(envs)} different environments (differing: {', '.join(differing)}); "
                "timings and transcripts from different environments are not directly comparable.",
                warn=True,
            ))
        blocks.append(Table(headers, rows))
        if len(envs) > 1:
            blocks.append(Bullets([(f"Environment {i + 1}: " + ", ".join(files), []) for i, (_, files) in enumerate(envs)]))
    batchings = sorted({c.batching for c in results.cases if c.batching})
    if len(batchings) == 1:
        blocks.append(Para(f"Batching: {batchings[0]}."))
    elif batchings:
        blocks.append(Para(
            f"⚠ The cases were transcribed with {len(batchings)} different batchings ({'; '.join(batchings)}); "
            "batch composition changes what dynamically quantized models output.",
            warn=True,
        ))
    rows = []
    for shard in results.shards:
        m, commit = shard.machine, shard.commit
        cpu = m.get("cpu") if isinstance(m.get("cpu"), dict) else {}
        rev = str(commit.get("id") or "")[:12]
        if rev and commit.get("dirty"):
            rev += " (dirty)"
        if rev and commit.get("branch"):
            rev += f" on {commit['branch']}"
        rows.append([
            _code(shard.path),
            Cell(shard.datetime or DASH),
            Cell(str(m.get("node") or DASH)),
            Cell(str(cpu.get("brand_raw") or m.get("processor") or m.get("machine") or DASH)),
            Cell(rev or DASH),
            _num(str(len(shard.cases))),
        ])
    blocks.append(Heading(3, "Results files"))
    blocks.append(Table(["File", "Run at", "Machine", "CPU", "Commit", "Cases"], rows))
    return blocks


def changes_blocks(results: Results) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Changes against the baselines")]
    measured = [c for c in results.cases if c.measured]
    statuses = Counter(str(c.info.get("baseline") or "unknown") for c in measured)
    if statuses:
        blocks.append(Para("Baseline status of the measured cases: " + ", ".join(f"{n} {s}" for s, n in statuses.most_common()) + "."))
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
        blocks.append(Bullets([(w, [f"{len(ids)} case(s): " + ", ".join(ids[:4]) + (" ..." if len(ids) > 4 else "")])
                               for w, ids in sorted(radar.items())], code=False))
    else:
        blocks.append(Para("The quantization stack emitted no warning during the cases."))
    return blocks


def failed_blocks(results: Results) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Failed and errored cases")]
    items = []
    for c in results.cases:
        if c.verdict == "pass":
            continue
        if c.verdict == "fail":
            items.append((c.case_id, [f"failed {len(c.failures) or 1} baseline check(s), see above ({c.source})"]))
            continue
        known = [f"errored before it was measured (no WER recorded; from {c.source}, benchmark {c.name})"]
        if isinstance(c.info.get("error"), str) and c.info["error"]:
            known.append(c.info["error"])
        median = _number(c.stats.get("median"))
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


def build(results: Results, title: str = DEFAULT_TITLE, plots: dict[tuple[str, str], str] | None = None,
          sort: str = "config") -> list[Block]:
    """The report as blocks; ``plots`` maps (model, corpus family) to a plot's relative path."""
    plots = plots or {}
    cases = results.cases
    counts = Counter(c.verdict for c in cases)
    blocks: list[Block] = [Heading(1, title)]
    blocks.append(Para(
        f"{len(cases)} cases from {len(results.shards)} results file(s): {counts['pass']} passed, "
        f"{counts['fail']} failed baseline checks, {counts['error']} errored before measuring. "
        "WER is in percent of reference words; Δ is the WER difference to fp32 on the same corpus in "
        "percentage points, with its paired-bootstrap 95% interval; compression is the fraction of the fp32 "
        "serialized size saved; speed-up is fp32 transcription time over the config's."
    ))
    if len(results.environments) > 1:
        blocks.append(Para(f"⚠ The results come from {len(results.environments)} different environments; see Environment.", warn=True))
    for model in _models(results):
        mcases = [c for c in cases if c.model == model]
        blocks.append(Heading(2, f"Model {model}"))
        corpora = _corpora(mcases)
        families = list(dict.fromkeys(corpus_family(n)[0] for n in corpora))
        for family in families:
            members = [n for n in corpora if corpus_family(n)[0] == family]
            blocks.append(Heading(3, f"{model} · {family}" + (f" ({', '.join(members)})" if members != [family] else "")))
            if (model, family) in plots:
                blocks.append(Image(plots[(model, family)], f"Size against WER for {model} on {', '.join(members)}"))
            for corpus in members:
                ccases = [c for c in mcases if c.corpus == corpus]
                blocks.append(Heading(4, f"Corpus {corpus}"))
                line = " ".join(p for p in (_corpus_line(ccases), _fp32_line(ccases)) if p)
                blocks.append(Para(line))
                blocks.append(results_table(ccases, sort))
            parts = {corpus_family(n)[1]: n for n in members}
            if "clean" in parts and "other" in parts:
                blocks.append(Heading(4, f"Clean against other ({parts['clean']} / {parts['other']})"))
                blocks.append(clean_other_table(
                    [c for c in mcases if c.corpus == parts["clean"] and c.measured],
                    [c for c in mcases if c.corpus == parts["other"] and c.measured],
                    sort,
                ))
        blocks.append(Heading(3, f"{model} · quantization scope"))
        table = scope_table(mcases, sort)
        if table.rows:
            flagged = sum(1 for r in table.rows if r[6].warn or r[7].warn)
            if flagged:
                blocks.append(Para(f"⚠ {flagged} config(s) quantized modules beyond the scope or missed modules in it.", warn=True))
            blocks.append(table)
        else:
            blocks.append(Para("No case recorded its scope."))
    blocks += changes_blocks(results)
    blocks += environment_blocks(results)
    blocks += failed_blocks(results)
    return blocks


# --------------------------------------------------------------------------- rendering

# backslash, code, emphasis and table characters; "_" only where it could open or close emphasis
_MD_ESCAPE = re.compile(r"([\\`*|]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def _md_text(text: str) -> str:
    text = " ".join(str(text).split())
    text = _MD_ESCAPE.sub(r"\\\1", text)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _md_code(text: str, in_table: bool = False) -> str:
    text = " ".join(str(text).split())
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") or fence != "`" else ""
    body = f"{fence}{pad}{text}{pad}{fence}"
    return body.replace("|", "\\|") if in_table else body


def _md_cell(cell: Cell) -> str:
    text = _md_code(cell.text, in_table=True) if cell.code else _md_text(cell.text)
    return f"**{text}**" if cell.warn and text and not cell.code else text


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + _md_text(b.text))
        elif isinstance(b, Para):
            out.append(f"**{_md_text(b.text)}**" if b.warn else _md_text(b.text))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_text(h) for h in b.headers) + " |"]
            aligns = [
                "---:" if b.rows and all(r[i].numeric for r in b.rows) else "---" for i in range(len(b.headers))
            ]
            lines.append("| " + " | ".join(aligns) + " |")
            for row in b.rows:
                lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
            out.append("\n".join(lines))
        elif isinstance(b, Bullets):
            lines = []
            for item, subs in b.items:
                lines.append("- " + (_md_code(item) if b.code else _md_text(item)))
                lines += ["  - " + _md_text(s) for s in subs]
            out.append("\n".join(lines))
        elif isinstance(b, Image):
            out.append(f"![{_md_text(b.alt)}]({b.path})")
    return "\n\n".join(out) + "\n"


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 110em; padding: 0 1em; color: #1b1f23; }
h1, h2, h3, h4 { margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.warn { background: #fff1f0; color: #a40e26; font-weight: 600; }
p.warn { padding: 0.5em 0.8em; border-left: 4px solid #cf222e; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.95em; }
img { max-width: 100%; border: 1px solid #d0d7de; }
"""


def _html_cell(cell: Cell) -> str:
    classes = [c for c, on in (("num", cell.numeric), ("warn", cell.warn)) if on]
    attr = f' class="{" ".join(classes)}"' if classes else ""
    body = html.escape(cell.text)
    return f"<td{attr}>" + (f"<code>{body}</code>" if cell.code else body) + "</td>"


def to_html(blocks: Sequence[Block], title: str = DEFAULT_TITLE) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            level = min(max(b.level, 1), 6)
            out.append(f"<h{level}>{html.escape(b.text)}</h{level}>")
        elif isinstance(b, Para):
            cls = ' class="warn"' if b.warn else ""
            out.append(f"<p{cls}>{html.escape(b.text)}</p>")
        elif isinstance(b, Table):
            out.append("<table>")
            out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b.headers) + "</tr></thead>")
            out.append("<tbody>")
            out += ["<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in b.rows]
            out.append("</tbody></table>")
        elif isinstance(b, Bullets):
            out.append("<ul>")
            for item, subs in b.items:
                head = f"<code>{html.escape(item)}</code>" if b.code else html.escape(item)
                sub = "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in subs) + "</ul>" if subs else ""
                out.append(f"<li>{head}{sub}</li>")
            out.append("</ul>")
        elif isinstance(b, Image):
            out.append(f'<p><img src="{html.escape(b.path, quote=True)}" alt="{html.escape(b.alt, quote=True)}"></p>')
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- plots


def pareto_plot(panels: Sequence[tuple[str, Sequence[Case]]], title: str = "") -> bytes:
    """A PNG: one panel per corpus, size (MB) against WER (%), colour = speed-up vs fp32, Pareto front drawn.

    Only measured cases with a size are plotted. Very large WERs (a collapsed configuration) are drawn
    at the top edge with their value in the label, so they do not flatten the rest of the plot.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    panels = [(name, [c for c in cases if c.measured and c.size_mb is not None]) for name, cases in panels]
    speedups = [c.speedup for _, cases in panels for c in cases if c.speedup is not None]
    low, high = (min(speedups), max(speedups)) if speedups else (1.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    norm, cmap = Normalize(low, high), colormaps["viridis"]

    fig = Figure(figsize=(7.5 * max(1, len(panels)), 5.6), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (name, cases) in zip(axes, panels, strict=False):
        xs = [c.size_mb for c in cases]
        ys = [c.wer * 100 for c in cases]
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("size (MB)")
        ax.set_ylabel("WER (%)")
        ax.grid(True, color="#dddddd", linewidth=0.6)
        if not cases:
            ax.text(0.5, 0.5, "no measured case", ha="center", va="center", transform=ax.transAxes, color="#888888")
            continue
        cap = max(4 * statistics.median(ys), 10.0)
        clipped = max(ys) > cap
        shown = [min(y, cap) for y in ys]
        front = pareto_front(list(zip(xs, ys, strict=True)))
        ax.plot([xs[i] for i in front], [shown[i] for i in front], color="#cf222e", linewidth=1.2,
                linestyle="--", zorder=2, label="Pareto front")
        for i, c in enumerate(cases):
            colour = cmap(norm(c.speedup)) if c.speedup is not None else "#aaaaaa"
            over = ys[i] > cap
            if c.config == "fp32":
                ax.scatter([xs[i]], [shown[i]], marker="*", s=260, color=colour, edgecolors="#cf222e",
                           linewidths=1.6, zorder=4, label="fp32")
            else:
                ax.scatter([xs[i]], [shown[i]], marker="^" if over else "o", s=46, color=colour,
                           edgecolors="black" if i in front else "none", linewidths=0.8, zorder=3)
            label = c.config + (f" ({ys[i]:.0f}%)" if over else "")
            offset = (4, 4) if i % 2 == 0 else (4, -8)
            ax.annotate(label, (xs[i], shown[i]), xytext=offset, textcoords="offset points", fontsize=5.5,
                        color="#333333", zorder=5, fontweight="bold" if c.config == "fp32" else "normal")
        top = cap * 1.08 if clipped else max(max(shown) * 1.1, ax.get_ylim()[1])
        ax.set_ylim(-0.03 * top, top)  # a margin below 0, so a WER of 0 is not drawn on the frame
        if clipped:
            ax.text(0.99, 0.99, f"WER above {cap:.0f}% drawn at the top (▲)", ha="right", va="top",
                    transform=ax.transAxes, fontsize=6, color="#666666")
        ax.set_xlim(left=0, right=max(xs) * 1.15)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.legend(loc="best", fontsize=7, framealpha=0.8)
    mappable = _scalar_mappable(norm, cmap)
    fig.colorbar(mappable, ax=list(axes), label="speed-up vs fp32 (×)", shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=11)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _scalar_mappable(norm, cmap):
    from matplotlib.cm import ScalarMappable

    mappable = ScalarMappable(norm=norm, cmap=cmap)
    mappable.set_array([])
    return mappable


# --------------------------------------------------------------------------- output


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write to a temporary file next to ``path``, then rename it over ``path``."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def write_report(results: Results, out: str | os.PathLike = "report", title: str = DEFAULT_TITLE,
                 sort: str = "config") -> list[Path]:
    """Write the plots, ``report.md`` and ``report.html`` into ``out``; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plots: dict[tuple[str, str], str] = {}
    used: set[str] = set()
    for model in _models(results):
        mcases = [c for c in results.cases if c.model == model]
        corpora = _corpora(mcases)
        for family in dict.fromkeys(corpus_family(n)[0] for n in corpora):
            members = [n for n in corpora if corpus_family(n)[0] == family]
            panels = [(n, [c for c in mcases if c.corpus == n]) for n in members]
            if not any(c.measured and c.size_mb is not None for _, cases in panels for c in cases):
                continue
            name = f"pareto-{_slug(model)}-{_slug(family)}.png"
            n = 2
            while name in used:
                name, n = f"pareto-{_slug(model)}-{_slug(family)}-{n}.png", n + 1
            used.add(name)
            written.append(atomic_write(out / name, pareto_plot(panels, f"{model} · {family}: size against WER")))
            plots[(model, family)] = name
    blocks = build(results, title, plots, sort)
    written.append(atomic_write(out / "report.md", to_markdown(blocks)))
    written.append(atomic_write(out / "report.html", to_html(blocks, title)))
    return written
