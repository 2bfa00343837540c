"""The regression drill: inject each regression of ``regressions.CATALOGUE`` into the real library
in-process, run the cases it should turn red against the baselines, and tabulate what the gate caught.

A control pass runs the same configurations unpatched first: a regression only counts as caught when
its case is green without the patch and red with it."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.regressions import CATALOGUE, Regression, by_name


@dataclass
class Row:
    regression: str
    kind: str
    library: str
    case: str
    verdict: str  # "caught", "caught (library error)", "missed", "control red", "skipped"
    checks: list[str] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0
    #: side by side: "identical" when the case was bit-identical to the reference environment's and its
    #: transcripts matched when transcribed anyway ("unsound" when they did not); "" otherwise
    shortcut: str = ""


def _first_line(messages: list[str], limit: int = 220) -> str:
    text = " | ".join((m.splitlines() or [""])[0] for m in messages if m)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _run(harness, model: str, corpus: str, config: QuantConfig):
    """(ids of the checks that failed, failures, error, what a green case measured and warned) of one case."""
    from whisper_ptq_bench.runner import QuantizationFailed

    try:
        record = harness.run_case(model, corpus, config)
    except QuantizationFailed as err:
        return [], [], str(err), "", ""
    verdict = record.verdict
    failed = list(dict.fromkeys(verdict.failed())) if verdict is not None else []
    # for a case that stayed green: its warnings and its outputs and speed against the baseline, so a miss says why
    measured = _first_line(list(record.warnings) + (verdict.detail() if verdict is not None else []))
    shortcut = {"verified": "identical", "unsound": "unsound"}.get(record.shortcut or "", "")
    return failed, record.failures, None, measured, shortcut


def run(
    regressions: list[Regression], options, *, per_regression: int = 1, echo=print, models: dict | None = None
) -> list[Row]:
    """Run the drill; ``options`` is a runner.Options (one model, one corpus) against existing baselines, or with
    ``against`` side by side: the reference environment unpatched, this one patched, no baselines needed (every
    case is transcribed, so that skipping the transcription of bit-identical cases is checked: ``Row.shortcut``).
    ``models`` may hand in fp32 models already loaded (name -> LoadedModel). Control rows come first."""
    from whisper_ptq_bench.backends import get_backend
    from whisper_ptq_bench.runner import Harness, Shared

    model, corpus = options.models[0], options.corpora[0]
    shared = Shared(models=dict(models or {}))
    plan = []
    for reg in regressions:
        ids = list(reg.configs[:per_regression])
        if "fp32" in reg.configs and "fp32" not in ids:
            ids.insert(0, "fp32")
        plan.append((reg, [QuantConfig.from_id(i) for i in ids]))
    control = Harness(options, shared)
    controls: list[Row] = []
    green: dict[str, tuple[bool, str]] = {}
    for config in dict.fromkeys(c for _, configs in plan for c in configs):
        backend = get_backend(config.backend)
        reason = backend.unavailable() or backend.unsupported(config, options.device)
        if reason:
            green[config.id] = (False, f"skipped: {reason}")
            continue
        _, failures, error, _, shortcut = _run(control, model, corpus, config)
        green[config.id] = (not failures and not error, _first_line(failures or [error or ""]))
        echo(f"control {config.id}: {'green' if green[config.id][0] else 'RED ' + green[config.id][1]}")
        controls.append(
            Row("control", "", "", f"{model}/{corpus}/{config.id}", "green" if green[config.id][0] else "red")
        )
        controls[-1].message, controls[-1].shortcut = green[config.id][1], shortcut
    rows = controls
    for reg, configs in plan:
        # fp32 is untouched unless transformers is patched: its references need no recomputing
        references = control.references if reg.library != "transformers" else {}
        harness = Harness(options, replace(shared, references=references))
        for config in configs:
            case = f"{model}/{corpus}/{config.id}"
            ok, why = green[config.id]
            if not ok:
                rows.append(
                    Row(
                        reg.name,
                        reg.kind,
                        reg.library,
                        case,
                        "control red" if not why.startswith("skipped") else "skipped",
                        message=why,
                    )
                )
                continue
            start = time.perf_counter()
            # side by side, this environment's timing worker times the candidate: it runs patched too
            timer = shared.timer.patched(reg.name) if shared.timer is not None else contextlib.nullcontext()
            with reg.patch(), timer:
                checks, failures, error, measured, shortcut = _run(harness, model, corpus, config)
            seconds = time.perf_counter() - start
            if error:
                row = Row(
                    reg.name, reg.kind, reg.library, case, "caught (library error)", ["error"], error[:220], seconds
                )
            elif failures:
                row = Row(reg.name, reg.kind, reg.library, case, "caught", checks, _first_line(failures), seconds)
            else:
                row = Row(reg.name, reg.kind, reg.library, case, "missed", [], measured, seconds)
            row.shortcut = shortcut
            rows.append(row)
            echo(f"{reg.name} on {config.id}: {row.verdict} {','.join(row.checks)}")
            harness.forget_quantized()  # never reuse a copy made under a patch
    for worker in shared.workers():
        worker.close()
    return rows


def score(rows: list[Row]) -> tuple[int, int]:
    """(regressions caught, regressions judged): a regression counts once, caught if any of its cases is red."""
    by_reg: dict[str, list[Row]] = {}
    for row in rows:
        if row.verdict.startswith("caught") or row.verdict == "missed":
            by_reg.setdefault(row.regression, []).append(row)
    caught = sum(1 for rs in by_reg.values() if any(r.verdict.startswith("caught") for r in rs))
    return caught, len(by_reg)


def table(rows: list[Row]) -> str:
    lines = [f"{'regression':30s} {'kind':22s} {'case':48s} {'verdict':22s} {'caught by':16s} message"]
    for r in rows:
        lines.append(
            f"{r.regression:30s} {r.kind:22s} {r.case[-48:]:48s} {r.verdict:22s} {','.join(r.checks) or '-':16s} {r.message}"
        )
    caught, judged = score(rows)
    lines.append(
        f"caught {caught} of {judged} regressions ({caught / judged:.0%})" if judged else "no regression was judged"
    )
    same = [r for r in rows if r.shortcut]
    if same:
        unsound = [r.case for r in same if r.shortcut == "unsound"]
        lines.append(
            f"{len(same)} case(s) bit-identical to the reference environment in weights and teacher-forced outputs, "
            f"transcribed anyway: {len(same) - len(unsound)} with identical transcripts"
            + (
                f", {len(unsound)} not ({', '.join(unsound)})"
                if unsound
                else " (skipping their transcription is sound)"
            )
        )
    return "\n".join(lines)


def select(names: list[str] | None) -> list[Regression]:
    return [by_name(n) for n in names] if names else list(CATALOGUE)


def write_json(rows: list[Row], path: Path) -> None:
    from whisper_ptq_bench.baselines import atomic_write

    caught, judged = score(rows)
    atomic_write(
        Path(path), json.dumps({"caught": caught, "judged": judged, "rows": [asdict(r) for r in rows]}, indent=1) + "\n"
    )
