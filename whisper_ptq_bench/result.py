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
from whisper_ptq_bench.speed import Paired, Speed, StateCost

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


def _digests(entry: dict, key: str, where: str) -> dict[str, str] | None:
    """The {name: hex digest} map under ``key``, validated (None when absent)."""
    if key not in entry:
        return None
    value = entry[key]
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BaselineError(f"{where}: {key} must map names to hex digests")
    return dict(value)


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
    cannot dequantize it) and its format; ``digests``: each dequantized weight's digest (bit-identical weights,
    equal digests), kept per machine profile."""

    KEYS = {"weights": PORTABLE, "weights_digest": PROFILE}
    modules: dict[str, tuple[float | None, str]]
    digests: dict[str, str] | None = None

    @property
    def mean_error(self) -> float | None:
        errors = [e for e, _ in self.modules.values() if e is not None]
        return round(sum(errors) / len(errors), 6) if errors else None

    def info(self) -> dict:
        return {m: [e, f] for m, (e, f) in self.modules.items()}

    def entry(self) -> dict:
        return {"weights": self.info()} | ({"weights_digest": self.digests} if self.digests is not None else {})

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
        digests = _digests(entry, "weights_digest", where)
        return cls({m: (e, f) for m, (e, f) in weights.items()}, digests) if "weights" in entry else None


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
    agreement with fp32, reference NLL], and their token-weighted corpus means; ``digests``: per utterance the
    digest of its log-probabilities (bit-identical outputs, equal digests), kept per machine profile."""

    KEYS = {"output": KERNEL, "output_digest": PROFILE}
    kl: float
    top1: float
    nll: float
    per_utterance: dict[str, tuple[float, float, float]]
    digests: dict[str, str] | None = None

    @classmethod
    def of(cls, d: dict, digests: dict[str, str] | None = None) -> Outputs:
        return cls(d["kl"], d["top1"], d["nll"], {u: tuple(v) for u, v in d["per_utterance"].items()}, digests)

    def info(self) -> dict:
        return {"kl": self.kl, "top1": self.top1, "nll": self.nll}

    def entry(self) -> dict:
        per = {u: list(v) for u, v in self.per_utterance.items()}
        out = {"output": {**self.info(), "per_utterance": per}}
        return out | ({"output_digest": self.digests} if self.digests is not None else {})

    @classmethod
    def parse(cls, entry: dict, where: str) -> Outputs | None:
        digests = _digests(entry, "output_digest", where)
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
        per = {u: tuple(v) for u, v in out["per_utterance"].items()}
        return cls(out.get("kl", 0.0), out.get("top1", 0.0), out.get("nll", 0.0), per, digests)


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


@dataclass(frozen=True)
class KernelPath(Part):
    """The operators one run of the (short) fixed workload dispatches, with their call counts: a changed path (an
    int8 GEMM turned dequantize + matmul, an extra dequantize per call) shows as operators added and removed."""

    KEYS = {"kernels": PROFILE}
    ops: dict[str, int]

    def entry(self) -> dict:
        return {"kernels": dict(sorted(self.ops.items()))}

    @classmethod
    def parse(cls, entry: dict, where: str) -> KernelPath | None:
        if "kernels" not in entry:
            return None
        ops = entry["kernels"]
        if not isinstance(ops, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in ops.items()
        ):
            raise BaselineError(f"{where}: kernels must map operator names to call counts")
        return cls(dict(ops))

    def diff(self, other: KernelPath) -> str | None:
        """What ``other`` dispatches that this path does not, and the reverse: None when they are the same."""
        if self.ops == other.ops:
            return None
        added = sorted(set(other.ops) - set(self.ops))
        removed = sorted(set(self.ops) - set(other.ops))
        counts = sorted(
            ((other.ops[k] - self.ops[k], k) for k in set(self.ops) & set(other.ops) if other.ops[k] != self.ops[k]),
            key=lambda t: (-abs(t[0]), t[1]),
        )
        parts = []
        if added:
            parts.append("operators added: " + ", ".join(f"{k} (x{other.ops[k]})" for k in added[:8]))
        if removed:
            parts.append("operators removed: " + ", ".join(f"{k} (x{self.ops[k]})" for k in removed[:8]))
        if counts:
            shown = ", ".join(f"{k} {self.ops[k]} -> {other.ops[k]}" for _, k in counts[:5])
            parts.append(f"{len(counts)} operator(s) called a different number of times: {shown}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Drift:
    """How far a configuration's outputs moved from the same configuration's in a reference environment, on the
    same tokens: per utterance whose log-probabilities are not bit-identical, KL(reference || candidate) and
    top-1 agreement; every other of the ``utterances`` compared is bit-identical (KL 0, agreement 1)."""

    per_utterance: dict[str, tuple[float, float]]
    utterances: int

    @property
    def kl(self) -> float:
        return sum(k for k, _ in self.per_utterance.values()) / self.utterances if self.utterances else 0.0

    @property
    def top1(self) -> float:
        moved = sum(1 - a for _, a in self.per_utterance.values())
        return 1 - moved / self.utterances if self.utterances else 1.0

    def info(self) -> dict:
        return {"kl": self.kl, "top1": self.top1, "moved": len(self.per_utterance), "utterances": self.utterances}

    def describe(self) -> str:
        return (
            f"{len(self.per_utterance)} of {self.utterances} utterance(s) moved from the reference environment's "
            f"outputs: KL {self.kl:.3g} nats/token, top-1 agreement {self.top1:.2%}"
        )


#: Result field -> its part's type; the order is the order of the baseline keys.
PARTS: dict[str, type[Part]] = {
    "inputs": Inputs,
    "scope": Scope,
    "weights": Weights,
    "size": Size,
    "outputs": Outputs,
    "transcripts": Transcripts,
    "end_to_end": EndToEnd,
    "kernels": KernelPath,
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
    kernels: KernelPath | None = None
    #: measured against a live reference environment only: the outputs' divergence from the reference's and
    #: the speed timed in alternating rounds with it
    drift: Drift | None = None
    versus: Paired | None = None
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

    def to_json(self) -> dict:
        """Everything a reference needs of this result, unrounded, as JSON (what a worker environment sends)."""
        raw: dict = {}
        for name in PARTS:
            part = getattr(self, name)
            if part is not None:
                raw.update(part.entry())
        size, e2e = self.size, self.end_to_end
        return {
            "case_id": self.case_id,
            "config": self.config.id,
            "model": self.model,
            "corpus": self.corpus,
            "environment": self.environment,
            "profile": self.profile,
            "notes": list(self.notes),
            "error": self.error,
            "entry": raw,
            "scope_summary": self.scope.summary if self.scope else None,
            "size": [size.tensor_bytes, size.compression_vs_fp16] if size else None,
            "end_to_end": [e2e.seconds, e2e.peak_memory] if e2e else None,
        }

    @classmethod
    def from_json(cls, d: dict, where: str = "the reference environment") -> Result:
        from dataclasses import replace

        r = cls.from_entry(
            d["case_id"],
            QuantConfig.from_id(d["config"]),
            d["entry"],
            where,
            model=d["model"],
            corpus=d["corpus"],
            environment=d["environment"],
            profile=d["profile"],
            notes=tuple(d["notes"]),
            error=d["error"],
        )
        if r.scope is not None:
            r = replace(r, scope=replace(r.scope, summary=d["scope_summary"]))
        if r.size is not None and d.get("size"):
            r = replace(r, size=replace(r.size, tensor_bytes=d["size"][0], compression_vs_fp16=d["size"][1]))
        if r.end_to_end is not None and d.get("end_to_end"):
            r = replace(r, end_to_end=replace(r.end_to_end, seconds=d["end_to_end"][0], peak_memory=d["end_to_end"][1]))
        return r


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
