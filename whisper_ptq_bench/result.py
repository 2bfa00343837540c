"""One case measured once: a typed :class:`Result`, and the one schema that every view of it comes from.

A result is made of parts, one per signal (inputs, scope, weights, size, outputs, transcripts, speed, end to
end). Each part says which baseline keys it writes and, per key, where the value belongs
(:data:`PORTABLE`: every machine; :data:`PROFILE`: one machine profile; :data:`KERNEL`: one machine profile
when the configuration's kernels depend on the CPU, every machine otherwise). The baselines entry, the
obtained file, pytest-benchmark's ``extra_info`` and the session summary's row are derived from a result
here, and a baselines entry is read back (validated, with messages that name the entry) into the same type,
so that a check compares a reference result with a candidate result of one kind.

Adding a signal is a new part (its keys, ``entry``, ``parse``, ``info``) and a field of :class:`Result`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.errors import BaselineError
from whisper_ptq_bench.metrics import WerResult, transcript_fingerprint
from whisper_ptq_bench.speed import Speed, StateCost

PORTABLE, PROFILE, KERNEL = "portable", "profile", "kernel"


def number(value, where: str, key: str, *, allow_none: bool = False) -> None:
    """BaselineError unless ``value`` is a finite number (or None with ``allow_none``)."""
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise BaselineError(f"{where}: {key} must be a finite number, not {value!r}")


def _string(entry: dict, key: str, where: str) -> None:
    if key in entry and not isinstance(entry[key], str):
        raise BaselineError(f"{where}: {key} must be a string, not {entry[key]!r}")


def sig(x, digits: int = 6):
    """``x`` to ``digits`` significant digits (baselines stay readable and diff-friendly)."""
    if not isinstance(x, float) or x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


#: decimals baselines.json keeps of each plain number
DECIMALS = {"wer": 6, "fp32_wer": 6, "compression": 5, "speedup": 3, "rtf": 4}


def rounded(entry: dict) -> dict:
    """A baselines entry (or a part of one) with its measurements rounded as baselines.json keeps them: plain
    numbers to :data:`DECIMALS`, weight errors and outputs to six significant digits, speed as ``Speed.entry``."""
    out = dict(entry)
    for key, digits in DECIMALS.items():
        if isinstance(out.get(key), float):
            out[key] = round(out[key], digits)
    if "weights" in out:
        out["weights"] = {m: [sig(e), f] for m, (e, f) in out["weights"].items()}
    if "output" in out:
        o = out["output"]
        out["output"] = {
            **{k: sig(v) for k, v in o.items() if k != "per_utterance"},
            "per_utterance": {u: [sig(x) for x in v] for u, v in o["per_utterance"].items()},
        }
    if "speed" in out:
        out["speed"] = parse_speed(out, "speed").entry()
    return out


class Part:
    """A signal's measurements. ``KEYS``: the baseline keys it writes, each with where it belongs."""

    KEYS: ClassVar[dict[str, str]] = {}

    def entry(self) -> dict:
        """The baseline keys of this part (``rounded`` rounds them as baselines.json keeps them)."""
        raise NotImplementedError

    @classmethod
    def parse(cls, entry: dict, where: str):
        """The part held by a baselines entry (its keys validated), or None when the entry has none of them."""
        raise NotImplementedError


@dataclass(frozen=True)
class Inputs(Part):
    """What a result is comparable on: the corpus content, the fp32 weights and the batching."""

    KEYS = {"corpus_hash": PORTABLE, "model_fingerprint": PORTABLE, "batching": PORTABLE}
    corpus_hash: str
    model_fingerprint: str | None = None
    batching: str | None = None

    def entry(self) -> dict:
        out = {"corpus_hash": self.corpus_hash, "model_fingerprint": self.model_fingerprint, "batching": self.batching}
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def parse(cls, entry: dict, where: str) -> Inputs | None:
        for key in cls.KEYS:
            _string(entry, key, where)
        if "corpus_hash" not in entry:
            return None
        return cls(entry["corpus_hash"], entry.get("model_fingerprint"), entry.get("batching"))


@dataclass(frozen=True)
class Scope(Part):
    """Which modules were quantized, to what (``summary``), and its one-line form (the baseline keeps the line)."""

    KEYS = {"scope": PORTABLE}
    line: str
    summary: dict | None = None

    def entry(self) -> dict:
        return {"scope": self.line}

    @classmethod
    def parse(cls, entry: dict, where: str) -> Scope | None:
        _string(entry, "scope", where)
        return cls(entry["scope"]) if "scope" in entry else None


@dataclass(frozen=True)
class Weights(Part):
    """Per quantized module: the relative error of its dequantized weight against fp32 (None where the library
    cannot dequantize it) and its format."""

    KEYS = {"weights": PORTABLE}
    modules: dict[str, tuple[float | None, str]]

    @property
    def mean_error(self) -> float | None:
        errors = [e for e, _ in self.modules.values() if e is not None]
        return round(sum(errors) / len(errors), 6) if errors else None

    def info(self) -> dict:
        return {m: [e, f] for m, (e, f) in self.modules.items()}

    def entry(self) -> dict:
        return {"weights": self.info()}

    @classmethod
    def parse(cls, entry: dict, where: str) -> Weights | None:
        weights = entry.get("weights", {})
        if not isinstance(weights, dict):
            raise BaselineError(f"{where}: weights must map module names to [relative error, format]")
        for name, value in weights.items():
            if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], str)):
                raise BaselineError(
                    f"{where}: weights[{name!r}] must be [relative error or null, format], not {value!r}"
                )
            number(value[0], where, f"weights[{name!r}] error", allow_none=True)
        return cls({m: (e, f) for m, (e, f) in weights.items()}) if "weights" in entry else None


@dataclass(frozen=True)
class Size(Part):
    """Bytes of ``torch.save(state_dict)``, of the distinct tensors in memory, and the fraction saved against
    the fp32 and fp16 serializations of the same model."""

    KEYS = {"compression": PORTABLE, "size_bytes": PORTABLE}
    serialized_bytes: int
    compression: float
    tensor_bytes: int = 0
    compression_vs_fp16: float = 0.0

    def entry(self) -> dict:
        return {"compression": self.compression, "size_bytes": self.serialized_bytes}

    @classmethod
    def parse(cls, entry: dict, where: str) -> Size | None:
        if "compression" in entry:
            number(entry["compression"], where, "compression")
        if "compression" not in entry:
            return None
        return cls(entry.get("size_bytes", 0), entry["compression"])


@dataclass(frozen=True)
class Outputs(Part):
    """Teacher-forced output fidelity on the reference tokens: per utterance [KL(fp32 || config), top-1
    agreement with fp32, reference NLL], and their token-weighted corpus means."""

    KEYS = {"output": KERNEL}
    kl: float
    top1: float
    nll: float
    per_utterance: dict[str, tuple[float, float, float]]

    @classmethod
    def of(cls, d: dict) -> Outputs:
        return cls(d["kl"], d["top1"], d["nll"], {u: tuple(v) for u, v in d["per_utterance"].items()})

    def info(self) -> dict:
        return {"kl": self.kl, "top1": self.top1, "nll": self.nll}

    def entry(self) -> dict:
        per = {u: list(v) for u, v in self.per_utterance.items()}
        return {"output": {**self.info(), "per_utterance": per}}

    @classmethod
    def parse(cls, entry: dict, where: str) -> Outputs | None:
        if "output" not in entry:
            return None
        out = entry["output"]
        if not isinstance(out, dict) or not isinstance(out.get("per_utterance"), dict):
            raise BaselineError(f"{where}: output must hold per_utterance {{id: [kl, top1, nll]}}")
        for utt, triple in out["per_utterance"].items():
            if not (isinstance(triple, list) and len(triple) == 3):
                raise BaselineError(f"{where}: output per_utterance[{utt!r}] must be [kl, top1, nll]")
            for value in triple:
                number(value, where, f"output per_utterance[{utt!r}]")
        return cls(out.get("kl", 0.0), out.get("top1", 0.0), out.get("nll", 0.0), dict(out["per_utterance"]))


@dataclass(frozen=True)
class Transcripts(Part):
    """Greedy transcripts per utterance and their corpus WER; ``scored`` (per-utterance alignment counts) is
    there when measured in this run, ``delta_vs_fp32`` and ``changed_vs_fp32`` compare with this run's fp32."""

    KEYS = {"wer": KERNEL, "words": KERNEL, "fingerprint": KERNEL, "transcripts": KERNEL, "fp32_wer": PORTABLE}
    texts: dict[str, str] | None  # None: a baseline that keeps only fp32's WER here (the rest on another profile)
    wer: float | None
    words: int
    fp32_wer: float | None = None
    scored: WerResult | None = None
    delta_vs_fp32: dict | None = None
    changed_vs_fp32: tuple[str, ...] = ()

    @classmethod
    def measured(cls, texts: dict[str, str], scored: WerResult, fp32: WerResult, delta: dict, changed) -> Transcripts:
        return cls(texts, scored.wer, scored.words, fp32.wer, scored, delta, tuple(changed))

    def entry(self) -> dict:
        return {
            "wer": self.wer,
            "words": self.words,
            "fp32_wer": self.fp32_wer,
            "fingerprint": transcript_fingerprint(list(self.texts.values())),
            "transcripts": self.texts,
        }

    @classmethod
    def parse(cls, entry: dict, where: str) -> Transcripts | None:
        for key in ("wer", "fp32_wer"):
            if key in entry:
                number(entry[key], where, key)
        if "transcripts" in entry and (
            not isinstance(entry["transcripts"], dict)
            or not all(isinstance(v, str) for v in entry["transcripts"].values())
        ):
            raise BaselineError(f"{where}: transcripts must map utterance ids to text")
        _string(entry, "fingerprint", where)
        if "transcripts" not in entry and "wer" not in entry and "fp32_wer" not in entry:
            return None
        texts = dict(entry["transcripts"]) if "transcripts" in entry else None
        return cls(texts, entry.get("wer"), entry.get("words", 0), entry.get("fp32_wer"))


def parse_speed(entry: dict, where: str) -> Speed | None:
    """The speed a baselines entry holds (its cost per machine state), validated."""
    if "speed" not in entry:
        return None
    speed = entry["speed"]
    if not isinstance(speed, dict) or "cost" not in speed:
        raise BaselineError(f"{where}: speed must hold the relative cost on the fixed workload ('cost')")
    number(speed["cost"], where, "speed cost")
    if speed["cost"] <= 0:
        raise BaselineError(f"{where}: speed cost must be positive, not {speed['cost']!r}")
    if "state" in speed:
        number(speed["state"], where, "speed state")
        if speed["state"] <= 0:
            raise BaselineError(f"{where}: speed state (memory/compute balance) must be positive")
    others = speed.get("others", [])
    if not isinstance(others, list):
        raise BaselineError(f"{where}: speed others must be a list of {{state, cost, ci95, rounds}}")
    for i, other in enumerate(others):
        if not isinstance(other, dict) or not {"state", "cost"} <= set(other):
            raise BaselineError(f"{where}: speed others[{i}] must hold 'state' and 'cost'")
        for key in ("state", "cost"):
            number(other[key], where, f"speed others[{i}] {key}")
            if other[key] <= 0:
                raise BaselineError(f"{where}: speed others[{i}] {key} must be positive, not {other[key]!r}")
    return Speed(
        speed["cost"],
        tuple(speed.get("ci95", ())),
        speed.get("rounds", 0),
        speed.get("workload", ""),
        speed.get("state"),
        tuple(StateCost.of(o) for o in others),
    )


@dataclass(frozen=True)
class EndToEnd(Part):
    """Transcription of the whole corpus: seconds, real-time factor, speed-up over this run's fp32, peak memory.
    Reported, never gated (a model that loops emits more tokens)."""

    KEYS = {"rtf": PROFILE, "speedup": PROFILE}
    seconds: float
    rtf: float
    speedup: float
    peak_memory: int = 0

    def entry(self) -> dict:
        return {"rtf": self.rtf, "speedup": self.speedup}

    @classmethod
    def parse(cls, entry: dict, where: str) -> EndToEnd | None:
        for key in ("rtf", "speedup"):
            if key in entry:
                number(entry[key], where, key)
        return cls(0.0, entry["rtf"], entry["speedup"]) if "rtf" in entry and "speedup" in entry else None


#: Result field -> its part's type; the order is the order of the baseline keys.
PARTS: dict[str, type[Part]] = {
    "inputs": Inputs,
    "scope": Scope,
    "weights": Weights,
    "size": Size,
    "outputs": Outputs,
    "transcripts": Transcripts,
    "end_to_end": EndToEnd,
}
SPEED_KEYS = {"speed": PROFILE}
#: Every baseline key of a case, with where it belongs.
KEYS: dict[str, str] = {k: v for part in PARTS.values() for k, v in part.KEYS.items()} | SPEED_KEYS


def bound_keys(kernel_dependent: bool) -> set[str]:
    """Keys that belong to a machine profile for a configuration whose kernels do (or do not) depend on the CPU."""
    return {k for k, where in KEYS.items() if where == PROFILE or (where == KERNEL and kernel_dependent)}


@dataclass(frozen=True)
class Result:
    """Everything one case measured (or a baseline holds for it). A part is None when it was not measured
    (a case that errored first, a transcription skipped) or not recorded (a baseline without it)."""

    case_id: str
    config: QuantConfig
    model: str = ""
    corpus: dict = field(default_factory=dict)  # the corpus summary: name, content hash, utterances, seconds
    inputs: Inputs | None = None
    scope: Scope | None = None
    weights: Weights | None = None
    size: Size | None = None
    outputs: Outputs | None = None
    transcripts: Transcripts | None = None
    speed: Speed | None = None
    end_to_end: EndToEnd | None = None
    #: outputs recorded for this case on other machine profiles of the same device kind and architecture
    elsewhere: tuple[tuple[str, Outputs], ...] = ()
    environment: dict = field(default_factory=dict)
    profile: str = ""
    notes: tuple[str, ...] = ()  # what the measurement itself left out (e.g. long-form utterances)
    error: str | None = None

    def entry(self) -> dict:
        """The baselines entry (all keys, rounded; ``split`` sorts them into portable and per-profile)."""
        out: dict = {}
        for name in PARTS:
            part = getattr(self, name)
            if part is not None:
                out.update(part.entry())
        if self.speed is not None:
            out["speed"] = self.speed.entry()
        return rounded(out)

    @classmethod
    def from_entry(cls, case_id: str, config: QuantConfig, entry: dict, where: str, **context) -> Result:
        """The result a baselines entry (one profile's view: portable part merged with the profile's) holds."""
        parts = {name: part.parse(entry, where) for name, part in PARTS.items()}
        return cls(case_id, config, speed=parse_speed(entry, where), **parts, **context)

    @property
    def batching(self) -> str:
        return (self.inputs.batching if self.inputs else None) or ""


def validate_entry(entry: dict, allowed: set[str], where: str) -> None:
    """BaselineError naming ``where`` for an unknown key or a malformed value of a baselines entry."""
    unknown = set(entry) - allowed
    if unknown:
        raise BaselineError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})")
    for part in PARTS.values():
        part.parse(entry, where)
    parse_speed(entry, where)


def split(entry: dict, kernel_dependent: bool) -> tuple[dict, dict]:
    """(portable part, this profile's part) of a baselines entry."""
    bound = bound_keys(kernel_dependent)
    return {k: v for k, v in entry.items() if k not in bound}, {k: v for k, v in entry.items() if k in bound}


@dataclass
class CaseRecord:
    """A case as the session keeps it: its result, the gate's verdict on it (``gate.Verdict``), its baseline
    status ("ok", "failed", "missing", "updated", "errored", "not written") and the warnings the quantization
    stack emitted while it ran (the next upgrade's breakage)."""

    result: Result
    verdict: object = None
    status: str = ""
    library_warnings: list[str] = field(default_factory=list)

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
            "speedup": r.end_to_end.speedup if r.end_to_end else 1.0,
            "verdict": {"error": "ERROR", "fail": "FAIL"}.get(self.outcome, "warn" if self.warnings else "ok"),
            "baseline": self.status,
            "error": r.error,
            "notes": self.notes,
            "library_warnings": self.library_warnings,
            "balance": own,
        }
