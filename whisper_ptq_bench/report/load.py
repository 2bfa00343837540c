"""Input: pytest-benchmark JSON results files read into cases, and the shards of a run merged.

A case is known by its id, ``{model}/{corpus}/{config}``, parsed by the suite's one parser
(:func:`whisper_ptq_bench.baselines.split_case_id`); the report also takes an entry whose id that
parser refuses, and reports it with what the entry says.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from whisper_ptq_bench import baselines as bl
from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.errors import BaselineError, BenchError


class ReportError(BenchError):
    """A results file is missing, unreadable or not pytest-benchmark output, or shards disagree."""


def number(value) -> float | None:
    """A finite int or float as a float; anything else (bool, None, NaN, text) as None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _freeze(env: dict) -> tuple:
    return tuple((str(k), json.dumps(v, sort_keys=True) if not isinstance(v, str) else v) for k, v in env.items())


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
        return number(self.info.get("wer")) is not None

    @property
    def verdict(self) -> str:
        """``pass``, ``fail`` (baseline checks failed), ``skipped`` (not run, with a reason) or ``error``."""
        if self.info.get("verdict") == "skipped":
            return "skipped"
        if not self.measured:
            return "error"
        return "fail" if self.info.get("verdict") == "fail" or self.failures else "pass"

    @property
    def failures(self) -> list[str]:
        return strings(self.info.get("failures"))

    @property
    def comparison(self) -> str | None:
        """``identical``, ``changed`` or ``regressed`` against the reference (baselines or a live environment);
        None when the case was not compared (results of an older release, or nothing to compare with)."""
        comparison = self.info.get("comparison")
        verdict = comparison.get("verdict") if isinstance(comparison, dict) else None
        return verdict if verdict in ("identical", "changed", "regressed") else None

    @property
    def changes(self) -> list[str]:
        """``check: what moved`` for each check that saw a change."""
        comparison = self.info.get("comparison")
        return strings(comparison.get("changes")) if isinstance(comparison, dict) else []

    @property
    def warnings(self) -> list[str]:
        return strings(self.info.get("warnings"))

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
        return number(self.info.get("wer"))

    @property
    def size_mb(self) -> float | None:
        size = number(self.info.get("size_mb"))
        if size is None and number(self.info.get("size_bytes")):
            size = self.info["size_bytes"] / 1e6
        return size

    @property
    def speedup(self) -> float | None:
        return number(self.info.get("speedup_vs_fp32"))

    @property
    def kernel_speedup(self) -> float | None:
        """Speed-up over fp32 on the fixed workload, interleaved rounds (the gated speed)."""
        return number(self.info.get("kernel_speedup_vs_fp32"))

    @property
    def weight_error(self) -> float | None:
        return number(self.info.get("weight_error_mean"))

    @property
    def kl(self) -> float | None:
        output = self.info.get("output")
        return number(output.get("kl")) if isinstance(output, dict) else None

    @property
    def library_warnings(self) -> list[str]:
        return strings(self.info.get("library_warnings"))

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
    """``{model}/{corpus}/{config}`` -> parts; the model may itself contain slashes (hub ids).

    An id that :func:`whisper_ptq_bench.baselines.split_case_id` refuses (too few parts, an empty part,
    a config id that does not parse) is not an error here: its parts are taken as they split, and a
    missing model or corpus is empty.
    """
    try:
        model, corpus, config = bl.split_case_id(case_id)
    except BaselineError:
        parts = bl.case_id_parts(case_id)
        return ("",) * (3 - len(parts)) + parts
    return model, corpus, config.id


def axes_from_id(config_id: str) -> dict:
    """The axes of a config id (for cases without extra_info); empty when the id does not parse."""
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
    ours = data.get("whisper_ptq_bench")
    if ours is not None:  # cases that ended before they were timed (errored, skipped): not in 'benchmarks'
        unmeasured = ours.get("unmeasured") if isinstance(ours, dict) else None
        if not isinstance(unmeasured, list) or not all(
            isinstance(i, dict) and isinstance(i.get("case"), str) for i in unmeasured
        ):
            raise ReportError(f"{shown}: 'whisper_ptq_bench.unmeasured' must be a list of case records")
        for info in unmeasured:
            cases.append(_case_from_entry({"name": f"test_quantization[{info['case']}]", "extra_info": info}, shown))
    elif data["benchmarks"] and not any(isinstance(c.info.get("case"), str) for c in cases):
        raise ReportError(
            f"{shown}: a pytest-benchmark file, but not of whisper-ptq-bench (no benchmark carries a case in its "
            "extra_info); give the --benchmark-json of `pytest benchmarks/ --benchmark-only`"
        )
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
