"""A case as the session keeps it (its result, verdict and status) and the views derived from it: the
``extra_info`` pytest-benchmark stores (and the report reads) and the session summary's row."""

from __future__ import annotations

from dataclasses import dataclass, field

from whisper_ptq_bench.result import Result


@dataclass
class CaseRecord:
    """A case as the session keeps it: its result, the gate's verdict on it (``gate.Verdict``), its baseline
    status ("ok", "failed", "missing", "updated", "errored", "not written") and the warnings the quantization
    stack emitted while it ran (the next upgrade's breakage)."""

    result: Result
    verdict: object = None
    status: str = ""
    library_warnings: list[str] = field(default_factory=list)
    #: side by side: the reference environment's result of the case (or why it failed there), the warnings its
    #: libraries emitted, and whether this case's transcription was skipped as bit-identical ("identical"), or done
    #: anyway and found the same ("verified") or not ("unsound")
    reference: Result | None = None
    reference_error: str | None = None
    reference_warnings: list[str] = field(default_factory=list)
    shortcut: str | None = None

    @property
    def case_id(self) -> str:
        return self.result.case_id

    @property
    def failures(self) -> list[str]:
        return self.verdict.failures if self.verdict is not None else []

    @property
    def warnings(self) -> list[str]:
        return self.verdict.warnings if self.verdict is not None else []

    @property
    def notes(self) -> list[str]:
        return list(self.result.notes) + (self.verdict.notes if self.verdict is not None else [])

    @property
    def comparison(self) -> str:
        """identical, changed or regressed against the reference; error, or the status when nothing was compared."""
        if self.result.error:
            return "error"
        return self.verdict.verdict if self.verdict is not None else self.status

    @property
    def outcome(self) -> str:
        if self.result.error:
            return "error"
        return "fail" if self.failures else "pass"

    def extra_info(self) -> dict:
        """Everything the case measured and decided, for pytest-benchmark's ``extra_info`` (and the report)."""
        r = self.result
        size, e2e, speed, scope = r.size, r.end_to_end, r.speed, r.scope
        serialized = size.serialized_bytes if size else 0
        rtf = e2e.rtf if e2e else 0.0
        info = {
            "case": r.case_id,
            "model": r.model,
            "corpus": r.corpus,
            "config": r.config.id,
            "axes": r.config.axes(),
            "size_bytes": serialized,
            "tensor_bytes": size.tensor_bytes if size else 0,
            "size_mb": round(serialized / 1e6, 3),
            "compression": round(size.compression if size else 0.0, 5),
            "compression_vs_fp16": round(size.compression_vs_fp16 if size else 0.0, 5),
            "seconds": round(e2e.seconds if e2e else 0.0, 4),
            "rtf": round(rtf, 5),
            "rtfx": round(1 / rtf, 3) if rtf else None,
            "speedup_vs_fp32": round(e2e.speedup if e2e else 1.0, 4),
            "speed": speed.info() if speed else None,
            "kernel_speedup_vs_fp32": round(1 / speed.cost, 4) if speed else None,
            "weights": r.weights.info() if r.weights else {},
            "weight_error_mean": r.weights.mean_error if r.weights else None,
            "output": r.outputs.info() if r.outputs else None,
            "peak_memory_mb": round((e2e.peak_memory if e2e else 0) / 1e6, 1),
            "peak_memory_kind": "cuda max allocated"
            if r.environment.get("device", "").startswith("cuda")
            else "process RSS",
            "scope": scope.summary if scope else None,
            "scope_line": scope.line if scope else "",
            "transcripts_changed_vs_fp32": len(r.transcripts.changed_vs_fp32) if r.transcripts else 0,
            "verdict": self.outcome,
            "error": r.error,
            "failures": self.failures,
            "warnings": self.warnings,
            "notes": self.notes,
            "library_warnings": self.library_warnings,
            "baseline": self.status,
            "environment": r.environment,
            "profile": r.profile,
            "batching": r.batching,
        }
        verdict = self.verdict
        info["comparison"] = (
            None
            if verdict is None
            else {
                "verdict": verdict.verdict,
                "changes": verdict.changes(),
                "failed": verdict.failed(),
            }
        )
        if r.kernels is not None:
            info["kernels"] = r.kernels.ops
        if r.drift is not None:
            info["drift"] = r.drift.info()
        if r.versus is not None:
            info["versus"] = r.versus.info()
        if self.reference is not None or self.reference_error is not None:
            info["reference"] = {
                "environment": self.reference.environment if self.reference is not None else None,
                "error": self.reference_error,
                "library_warnings": self.reference_warnings,
                "transcription": {"identical": "reused", "verified": "verified", "unsound": "differed"}.get(
                    self.shortcut or "", "transcribed"
                ),
            }
        t = r.transcripts
        if t is not None and t.scored is not None:
            info["wer"] = round(t.wer, 6)
            info["wer_counts"] = t.scored.counts()
            info["transcripts"] = t.texts
        if t is not None and t.delta_vs_fp32 is not None:
            info["wer_delta_vs_fp32"] = t.delta_vs_fp32
        return info

    def row(self) -> dict:
        """The session summary's row of the case."""
        r = self.result
        t, speed = r.transcripts, r.speed
        delta = t.delta_vs_fp32 if t is not None else None
        own = []  # the machine-state readings of the case's own rounds (its speed pools earlier cases' first)
        if speed is not None and speed.timing is not None and speed.timing.balance:
            balance = speed.info()["balance"]
            own = balance[-(speed.rounds_this_case or len(balance)) :]
        return {
            "case": r.case_id,
            "wer": None if t is None or t.scored is None else t.wer,
            "delta": None if delta is None else [delta["delta"], *delta["ci95"]],
            "size_mb": (r.size.serialized_bytes if r.size else 0) / 1e6,
            "compression": r.size.compression if r.size else 0.0,
            "weight_error": r.weights.mean_error if r.weights else None,
            "kl": None if r.outputs is None else r.outputs.kl,
            "kernel": None if speed is None else 1 / speed.cost,
            "versus": None if r.versus is None else r.versus.ratio,
            "speedup": r.end_to_end.speedup if r.end_to_end else 1.0,
            "verdict": {"error": "ERROR", "fail": "FAIL"}.get(self.outcome, "warn" if self.warnings else "ok"),
            "comparison": self.comparison,
            "changes": self.verdict.changes() if self.verdict is not None else [],
            "baseline": self.status,
            "error": r.error,
            "notes": self.notes,
            "library_warnings": self.library_warnings,
            "balance": own,
        }
