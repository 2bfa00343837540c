"""The session summary: what the terminal shows at the end of a run, and the same as markdown for CI pages
(``$GITHUB_STEP_SUMMARY``). It opens with the verdict counts (identical, changed, regressed) and what changed,
then the table of cases, notes, library warnings and the machine. Input: the summaries the plugin collects (one
per process; xdist workers send theirs)."""

from __future__ import annotations

from collections import Counter

#: the order verdicts are counted and listed in
ORDER = ("identical", "changed", "regressed", "error", "missing", "updated", "measured")


def _fmt(value, spec: str, width: int) -> str:
    return f"{'-':>{width}s}" if value is None else f"{value:{width}{spec}}"


def _rows(summaries: list[dict]) -> list[dict]:
    return sorted((row for s in summaries for row in s["rows"]), key=lambda r: r["case"])


def _skipped(summaries: list[dict]) -> list[dict]:
    found = {i["case"]: i for s in summaries for i in s.get("unmeasured", []) if i.get("verdict") == "skipped"}
    return sorted(found.values(), key=lambda i: i["case"])


def counts(rows: list[dict], skipped: int = 0) -> str:
    """``22 identical, 4 changed, 0 regressed`` (then errors, missing baselines, recordings, skipped)."""
    found = Counter(row.get("comparison") or row.get("baseline") or "measured" for row in rows)
    parts = [f"{found.get(v, 0)} {v}" for v in ("identical", "changed", "regressed")]
    parts += [f"{found[v]} {v}" for v in ORDER[3:] if found.get(v)]
    parts += [f"{n} {v}" for v, n in sorted(found.items()) if v not in ORDER]
    return ", ".join(parts) + (f", {skipped} skipped" if skipped else "")


def changed(rows: list[dict]) -> list[str]:
    """One line per case that changed or regressed, with what moved."""
    out = []
    for row in rows:
        if row.get("comparison") in ("changed", "regressed"):
            what = "; ".join(row.get("changes") or []) or (
                "see its failures" if row["comparison"] == "regressed" else ""
            )
            out.append(
                f"{row['comparison'].upper() if row['comparison'] == 'regressed' else 'changed'} {row['case']}: {what}"
            )
    return out


def lines(summaries: list[dict]) -> list[str]:
    rows, skipped = _rows(summaries), _skipped(summaries)
    if not rows and not skipped:
        return []
    out = []
    if rows:
        references = sorted({s["reference"] for s in summaries if s.get("reference")})
        out.append(counts(rows, len(skipped)) + (f" (against {', '.join(references)})" if references else ""))
        out += changed(rows)
    out += [f"SKIPPED {info['case']}: {info['reason']}" for info in skipped]
    if not rows:
        return out
    versus = any(row.get("versus") is not None for row in rows)
    speed = f"{'vs ref':>7s}" if versus else f"{'kernel':>7s}"
    out.append(
        f"{'case':58s} {'WER':>7s} {'dWER vs fp32 [95% CI]':>24s} {'MB':>6s} {'compr':>6s} {'w-err':>7s} {'KL':>8s} "
        f"{speed} {'e2e':>6s}  verdict"
    )
    for row in rows:
        delta = "-" if row["delta"] is None else "{:+.2f} [{:+.2f},{:+.2f}]".format(*[x * 100 for x in row["delta"]])
        if versus:
            kernel = "-" if row.get("versus") is None else f"{row['versus']:.2f}x"
        else:
            kernel = "-" if row["kernel"] is None else f"{row['kernel']:.2f}x"
        e2e = "-" if row["wer"] is None else f"{row['speedup']:.2f}x"
        verdict, warn = row.get("comparison"), " (warnings)" if row["verdict"] == "warn" else ""
        if verdict not in ("identical", "changed", "regressed") or row["baseline"] == "missing":
            verdict, warn = row["verdict"], f" ({row['baseline'] or 'not run'})"
        out.append(
            f"{row['case'][:58]:58s} {_fmt(None if row['wer'] is None else row['wer'] * 100, '.2f', 7)} {delta:>24s} "
            f"{row['size_mb']:6.1f} {row['compression']:6.1%} {_fmt(row['weight_error'], '.4f', 7)} {_fmt(row['kl'], '.5f', 8)} "
            f"{kernel:>7s} {e2e:>6s}  {verdict.upper() if verdict == 'regressed' else verdict}{warn}"
        )
    out.append(
        "WER in %; w-err: mean relative error of the dequantized weights; KL: teacher-forced divergence from fp32 "
        "(nats/token); "
        + (
            "vs ref: time of the fixed workload over the reference environment's, alternating rounds (gated); "
            if versus
            else "kernel: speed-up over fp32 on the fixed workload (gated, per machine profile); "
        )
        + "e2e: end-to-end speed-up (reported only); verdict: identical (bit-equal weights and outputs), changed "
        "(moved within tolerance), regressed (red)"
    )
    out += [f"ERROR {row['case']}: {row['error']}" for row in rows if row.get("error")]
    notes = sorted({f"{row['case']}: {n}" for row in rows for n in row.get("notes", [])})
    if notes:
        noted = len({row["case"] for row in rows if row.get("notes")})
        out.append(f"notes on {noted} case(s): what was not compared, or compared otherwise:")
        out += [f"  {n}" for n in notes[:20]]
        if len(notes) > 20:
            out.append(f"  ... and {len(notes) - 20} more")
    radar: dict[str, list[str]] = {}
    for row in rows:
        for w in row.get("library_warnings", []):
            radar.setdefault(w, []).append(row["case"])
    if radar:
        out.append(f"library warnings during the cases ({len(radar)} distinct; the next upgrade's breakage):")
        out += [f"  [{len(cases)} case(s)] {w}" for w, cases in sorted(radar.items())]
    phases: dict[str, float] = {}
    for s in summaries:
        for name, seconds in s["phases"].items():
            phases[name] = phases.get(name, 0.0) + seconds
    out += [f"batching: {b}" for b in sorted({s["batching"] for s in summaries if s.get("batching")})]
    out += [f"machine profile: {p}" for p in sorted({s["profile"] for s in summaries if s.get("profile")})]
    readings = [b for row in rows for b in row.get("balance", [])]
    if readings:
        from whisper_ptq_bench.speed import describe_states

        out.append(
            f"machine state (memory/compute balance; speed is judged within a state): {describe_states(readings)}"
        )
    if phases:
        out.append(
            "time per phase: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(phases.items(), key=lambda kv: -kv[1]))
        )
    diffs = sorted({d for s in summaries for d in s["diff"]})
    if diffs:
        out.append("environment differs from the reference's:")
        out += [f"  {d}" for d in diffs]
    out += sorted({line for s in summaries for line in s["lines"]})
    return out


def markdown(summaries: list[dict]) -> str:
    """The summary for a CI page: the counts, what changed or regressed, and a table of every case."""
    rows, skipped = _rows(summaries), _skipped(summaries)
    if not rows and not skipped:
        return ""
    references = sorted({s["reference"] for s in summaries if s.get("reference")})
    out = [
        "## whisper-ptq-bench",
        "",
        f"**{counts(rows, len(skipped))}**" + (f" against {', '.join(references)}" if references else ""),
        "",
    ]
    moved = changed(rows)
    if moved:
        out += (
            ["### What changed", ""]
            + [f"- `{line.split(': ', 1)[0]}`: {line.split(': ', 1)[1]}" for line in moved]
            + [""]
        )
    diffs = sorted({d for s in summaries for d in s["diff"]})
    if diffs:
        out += ["Environment differs from the reference's:", ""] + [f"- {d}" for d in diffs] + [""]
    out += ["| case | verdict | WER % | KL | size MB | speed |", "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        speed = row.get("versus") if row.get("versus") is not None else row.get("kernel")
        label = "x ref" if row.get("versus") is not None else "x fp32"
        out.append(
            f"| `{row['case']}` | {row.get('comparison') or row['verdict']} | "
            f"{'-' if row['wer'] is None else format(row['wer'] * 100, '.2f')} | "
            f"{'-' if row['kl'] is None else format(row['kl'], '.5f')} | {row['size_mb']:.1f} | "
            f"{'-' if speed is None else format(speed, '.2f') + ' ' + label} |"
        )
    out += [f"| `{i['case']}` | skipped: {i['reason']} | | | | |" for i in skipped]
    errors = [row for row in rows if row.get("error")]
    if errors:
        out += ["", "### Errors", ""] + [f"- `{row['case']}`: {row['error']}" for row in errors]
    return "\n".join(out) + "\n\n"
