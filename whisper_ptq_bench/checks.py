"""Regression checks: small objects with a stable ``id`` that compare a reference result with a candidate
result of the same case and return an :class:`Outcome`.

A reference is whatever yields a :class:`~whisper_ptq_bench.result.Result` for a case id: the baselines
file (a machine profile's view of an entry) or a live second environment. A check whose part is absent
from either side (a profile without a baseline, an older entry, a transcription not run) is not compared;
``gate.judge`` says so in the case's notes. Checks register themselves with :func:`register`, in the order
the gate runs them; the gate knows none of them by name.

Adding a signal: a part of the result (``result.py``) and one class here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from whisper_ptq_bench import speed as sp
from whisper_ptq_bench.metrics import mean_difference, paired_bootstrap, score
from whisper_ptq_bench.result import Outputs, Result, sig

IDENTICAL, CHANGED, REGRESSED, NOT_COMPARED = "identical", "changed", "regressed", "not compared"


@dataclass(frozen=True)
class Outcome:
    """What one check found: ``status`` (identical, changed, regressed, not compared), the failure message of a
    regression, a warning (reported, not red), a note (how it was compared), ``change`` (what moved, with its
    direction and size) and ``detail`` (the measured comparison, also when within tolerance)."""

    check: str
    status: str
    failure: str | None = None
    warning: str | None = None
    note: str | None = None
    change: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Context:
    """How a case is compared: the tolerances (baselines.DEFAULT_TOLERANCES and the file's own), strict
    transcripts (a changed transcript fails), whether the reference is on this machine profile, whether any
    change fails (gates that want every numerics change approved), and what the reference is (for messages)."""

    tol: dict
    strict_transcripts: bool = False
    same_profile: bool = True
    fail_on_change: bool = False
    reference: str = "the baseline entry has no baseline for it"  # why a check was not compared


_REGISTRY: list[type[Check]] = []


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: the gate runs every registered check, in registration order."""
    if any(c.id == cls.id for c in _REGISTRY):
        raise RuntimeError(f"check {cls.id!r} registered twice")
    _REGISTRY.append(cls)
    return cls


def registered() -> list[type[Check]]:
    return list(_REGISTRY)


def ids() -> list[str]:
    return [c.id for c in _REGISTRY]


class Check:
    """``compare(reference, candidate, context)`` for the result part named ``part``. A ``blocking`` check that
    fails ends the comparison: nothing else is comparable."""

    id: ClassVar[str]
    part: ClassVar[str]
    blocking: ClassVar[bool] = False
    #: False for a check of time, not of what the model computes: --ptq-fail-on-change fails numerics changes only
    numerics: ClassVar[bool] = True

    @classmethod
    def build(cls, tol: dict) -> Check:
        """The check at a case's tolerances (``baselines.DEFAULT_TOLERANCES`` and the file's own)."""
        return cls()

    def applies(self, reference: Result, candidate: Result) -> bool:
        return getattr(reference, self.part) is not None and getattr(candidate, self.part) is not None

    def compare(self, reference: Result, candidate: Result, context: Context) -> Outcome:
        raise NotImplementedError

    def outcome(self, status: str, **kw) -> Outcome:
        return Outcome(self.id, status, **kw)


def pts(x: float) -> str:
    return f"{x * 100:+.2f}"


def _names(items: list[str], limit: int = 6) -> str:
    return ", ".join(items[:limit]) + (f" ... ({len(items)} in all)" if len(items) > limit else "")


@register
class InputsCheck(Check):
    """A baseline is comparable only on the same corpus content, the same fp32 weights and the same batching
    (batch composition changes what dynamically quantized models output)."""

    id, part, blocking = "inputs", "inputs", True

    @staticmethod
    def fails(old, new) -> str | None:
        if old.corpus_hash != new.corpus_hash:
            return (
                f"the corpus changed (content hash {old.corpus_hash} in the baseline, {new.corpus_hash} now): "
                "the baseline is not comparable; rerun with --ptq-update-baselines once the change is intended"
            )
        if old.model_fingerprint and old.model_fingerprint != new.model_fingerprint:
            return (
                f"the fp32 weights changed (fingerprint {old.model_fingerprint[:12]} in the baseline, "
                f"{new.model_fingerprint[:12]} now); rerun with --ptq-update-baselines once intended"
            )
        if old.batching and new.batching and old.batching != new.batching:
            return (
                f"the baseline was recorded with {old.batching!r} and this run uses {new.batching!r}: "
                "not comparable; rerun with the baseline's --ptq-batch-size/--ptq-encoder-batch-size, "
                "or accept the change with --ptq-update-baselines"
            )
        return None

    def compare(self, reference: Result, candidate: Result, context: Context) -> Outcome:
        message = self.fails(reference.inputs, candidate.inputs)
        return self.outcome(REGRESSED, failure=message) if message else self.outcome(IDENTICAL)


@register
class WeightCheck(Check):
    """Per module: still quantized, same format, and the dequantized weight's relative error within the
    ``weight`` tolerance (relative) of its reference. Deterministic and machine-independent: the first signal
    to see a changed scale, zero point, code book, group size, optimizer default or dropped layer."""

    id, part = "weights", "weights"

    @classmethod
    def build(cls, tol: dict) -> WeightCheck:
        return cls(tol["weight"])

    def __init__(self, tolerance: float):
        self.tolerance = tolerance

    def compare(self, reference: Result, candidate: Result, context: Context) -> Outcome:
        old, new = reference.weights.modules, candidate.weights.modules
        problems = []
        lost = sorted(set(old) - set(new))
        if lost:
            problems.append(f"{len(lost)} module(s) no longer quantized (left in floating point): {_names(lost)}")
        gained = sorted(set(new) - set(old))
        if gained:
            problems.append(f"{len(gained)} module(s) now quantized that were not: {_names(gained)}")
        fmt = [f"{m} ({old[m][1]} -> {new[m][1]})" for m in sorted(set(old) & set(new)) if old[m][1] != new[m][1]]
        if fmt:
            problems.append(f"{len(fmt)} module(s) changed format: {_names(fmt, 3)}")
        nan = [m for m, (e, _) in new.items() if e is not None and not math.isfinite(e)]
        if nan:
            problems.append(f"{len(nan)} module(s) have NaN or infinite dequantized weights: {_names(nan)}")
        moved, shifted = [], 0
        for m in sorted(set(old) & set(new)):
            a, b = old[m][0], new[m][0]
            if a is None or b is None or not math.isfinite(b):
                continue
            shifted += sig(a) != sig(b)
            if abs(b - a) > self.tolerance * max(a, 1e-6):
                moved.append((abs(b - a) / max(a, 1e-6), m, a, b))
        if moved:
            moved.sort(reverse=True)
            worse = sum(1 for _, _, a, b in moved if b > a)
            detail = "; ".join(f"{m} {a:.4%} -> {b:.4%}" for _, m, a, b in moved[:4])
            problems.append(
                f"the weight error of {len(moved)} module(s) moved beyond {self.tolerance:.1%} of its baseline "
                f"({worse} worse, {len(moved) - worse} better): {detail}"
            )
        if problems:
            return self.outcome(REGRESSED, failure="weights: " + "; ".join(problems))
        a, b = reference.weights.digests, candidate.weights.digests
        if a is not None and b is not None:  # bit-level: recorded on this machine profile, or a live reference
            moved_bits = sorted(m for m in set(a) & set(b) if a[m] != b[m])
            if moved_bits:
                return self.outcome(
                    CHANGED,
                    change=f"the dequantized weights of {len(moved_bits)} module(s) are not bit-identical "
                    f"({_names(moved_bits, 3)}); {shifted} moved their error at the recorded precision",
                )
            return self.outcome(IDENTICAL)
        if shifted:
            return self.outcome(CHANGED, change=f"the weight error of {shifted} module(s) moved within tolerance")
        return self.outcome(IDENTICAL)


@register
class SizeCheck(Check):
    """Compression (fraction of the fp32 size saved) may not drop by more than the ``compression`` tolerance."""

    id, part = "size", "size"

    @classmethod
    def build(cls, tol: dict) -> SizeCheck:
        return cls(tol["compression"])

    def __init__(self, tolerance: float):
        self.tolerance = tolerance

    def compare(self, reference: Result, candidate: Result, context: Context) -> Outcome:
        old, new = reference.size.compression, candidate.size.compression
        if new < old - self.tolerance:
            return self.outcome(
                REGRESSED,
                failure=f"compression dropped from {old:.2%} to {new:.2%} of the fp32 size "
                "saved: the library now stores more bytes for this configuration",
            )
        was, now = reference.size.serialized_bytes, candidate.size.serialized_bytes
        if (was != now) if was and now else round(old, 5) != round(new, 5):  # bytes where both are known
            moved = f" ({was:,} -> {now:,} bytes serialized, {now - was:+,})" if was and now else ""
            return self.outcome(CHANGED, change=f"compression {old:.3%} -> {new:.3%}{moved}")
        return self.outcome(IDENTICAL)


@register
class OutputCheck(Check):
    """Teacher-forced output fidelity on the reference tokens: the mean KL divergence from fp32 may not rise
    more than ``kl`` (relative) and the reference negative log-likelihood not more than ``nll`` (nats per
    token, absolute), each only when a paired bootstrap over utterances finds the rise significant. ``nll``
    None gates the KL alone (the comparison across machine profiles: a broken configuration's NLL moves with
    the kernels by more than any useful absolute tolerance).

    An activation-quantized output recorded only on other machine profiles (``Result.elsewhere``) is compared
    with each of them on the KL alone at ``kl_across``, and fails only when it is beyond that against every
    one: such outputs differ between CPUs' integer kernels, by at most 7% of the KL where measured (AVX2 against
    AVX-512 kernels on one CPU)."""

    id, part = "output", "outputs"

    @classmethod
    def build(cls, tol: dict) -> OutputCheck:
        return cls(tol["kl"], tol["nll"], tol["alpha"])

    def __init__(self, kl: float, nll: float | None, alpha: float):
        self.kl, self.nll, self.alpha = kl, nll, alpha

    def applies(self, reference: Result, candidate: Result) -> bool:
        if candidate.outputs is None:
            return False
        return reference.outputs is not None or bool(reference.elsewhere)

    def fails(self, old: Outputs, new: Outputs) -> str | None:
        old_u, new_u = old.per_utterance, new.per_utterance
        ids = [i for i in new_u if i in old_u]
        if not ids:
            return None
        o = np.array([old_u[i] for i in ids], dtype=np.float64)
        n = np.array([new_u[i] for i in ids], dtype=np.float64)
        weights = np.ones(len(ids))
        problems = []
        if not np.isfinite(n).all():
            return "output: the teacher-forced pass gave NaN or infinite log-probabilities"
        for col, name, limit, relative in (
            (0, "KL divergence from fp32", self.kl, True),
            (2, "reference NLL", self.nll, False),
        ):
            if limit is None:
                continue
            iv = mean_difference(o[:, col], n[:, col], weights)
            rise, low, high, p = iv.delta, iv.low, iv.high, iv.p_value
            base = float(o[:, col].mean())
            allowed = limit * base + 1e-6 if relative else limit
            if rise > allowed and low > 0 and p < self.alpha:
                worst = np.argsort(-(n[:, col] - o[:, col]))[:5]
                names = ", ".join(
                    f"{ids[k]} ({o[k, col]:.4f} -> {n[k, col]:.4f})" for k in worst if n[k, col] > o[k, col]
                )
                unit = "nats" if col == 2 else "nats/token"
                problems.append(
                    f"{name} rose {base:.5f} -> {base + rise:.5f} {unit} (+{rise:.5f}, 95% CI [{low:+.5f}, {high:+.5f}], "
                    f"p={p:.4f}; allowed {'+' + format(limit, '.0%') if relative else '+' + format(limit, 'g')}); "
                    f"utterances that moved most: {names}"
                )
        return "output: " + "; ".join(problems) if problems else None

    @staticmethod
    def change(old: Outputs, new: Outputs, drift=None) -> str | None:
        """What moved between two outputs, or None when nothing did: bit for bit where both hold digests (the same
        machine profile, or a live reference), else at the recorded precision (six significant digits)."""
        same = [i for i in new.per_utterance if i in old.per_utterance]
        if old.digests is not None and new.digests is not None:
            moved = [i for i in same if old.digests.get(i) != new.digests.get(i)]
        else:
            moved = [
                i for i in same if [sig(x) for x in old.per_utterance[i]] != [sig(x) for x in new.per_utterance[i]]
            ]
        if not moved and len(same) == len(old.per_utterance) == len(new.per_utterance):
            return None
        kl = f"{new.kl / old.kl - 1:+.1%}" if old.kl else f"{new.kl - old.kl:+.2g}"
        text = f"{len(moved)} utterance(s) moved: KL {old.kl:.5f} -> {new.kl:.5f} ({kl}), NLL {new.nll - old.nll:+.4f}"
        return f"{text}; {drift.describe()}" if drift is not None and drift.per_utterance else text

    def compare(self, reference: Result, candidate: Result, context: Context) -> Outcome:
        new = candidate.outputs
        if reference.outputs is None:
            across = OutputCheck(context.tol["kl_across"], None, self.alpha)
            first = None
            for key, output in reference.elsewhere:
                message = across.fails(output, new)
                if message is None:
                    first = None
                    break
                first = first or message.replace(
                    "output: ", f"output (against machine profile {key}, another CPU): ", 1
                )
            keys = ", ".join(key for key, _ in reference.elsewhere)
            note = (
                f"output compared with machine profile {keys} at the tolerance across machines "
                f"(KL +{context.tol['kl_across']:.0%})"
            )
            if first:
                return self.outcome(REGRESSED, failure=first, note=note)
            change = self.change(reference.elsewhere[0][1], new)
            return self.outcome(CHANGED if change else IDENTICAL, note=note, change=change)
        old = reference.outputs
        detail = None
        if old.kl:  # fp32's KL from itself is 0
            detail = f"KL {old.kl:.5f} -> {new.kl:.5f} ({new.kl / old.kl - 1:+.1%}), NLL {old.nll:.4f} -> {new.nll:.4f}"
        message = self.fails(old, new)
        change = self.change(old, new, candidate.drift)
        if message:
            return self.outcome(REGRESSED, failure=message, detail=detail, change=change)
        return self.outcome(CHANGED if change else IDENTICAL, change=change, detail=detail)


@register
class WerCheck(Check):
    """WER may not rise more than ``wer``; a rise fails only if the paired bootstrap finds it significant. A
    configuration whose reference WER is already ``broken`` (20 points) above fp32's only warns: its greedy
    transcripts are chaotic, and its weights and teacher-forced outputs gate it."""

    id, part = "wer", "transcripts"

    @classmethod
    def build(cls, tol: dict) -> WerCheck:
        return cls(tol["wer"], tol["alpha"], tol["broken"])

    def __init__(self, tolerance: float, alpha: float, broken: float, seed: int = 0):
        self.tolerance, self.alpha, self.broken, self.seed = tolerance, alpha, broken, seed

    def applies(self, reference: Result, candidate: Result) -> bool:
        old, new = reference.transcripts, candidate.transcripts
        return (
            old is not None
            and old.texts is not None
            and old.wer is not None
            and new is not None
            and new.scored is not None
        )

    def interval(self, reference: Result, candidate: Result):
        new = candidate.transcripts.scored
        ids = [u.id for u in new.utterances]
        refs = [u.reference for u in new.utterances]
        old = score(ids, refs, [reference.transcripts.texts.get(i, "") for i in ids])
        return old, paired_bootstrap(old.error_vector(), new.error_vector(), new.word_vector(), seed=self.seed)

    def compare(self, reference: Result, candidate: Result, context: Context) -> Outcome:
        new = candidate.transcripts.scored
        old, iv = self.interval(reference, candidate)
        rise = new.wer - old.wer
        significant = iv.p_value < self.alpha and iv.low > 0
        change = f"WER {pts(rise)} points ({old.wer:.2%} -> {new.wer:.2%})" if new.errors != old.errors else None
        if not (rise > self.tolerance and significant):
            return self.outcome(CHANGED if change else IDENTICAL, change=change)
        worst = sorted(((u.errors - o.errors, u) for u, o in zip(new.utterances, old.utterances)), key=lambda t: -t[0])
        names = ", ".join(f"{u.id} (+{d})" for d, u in worst[:5] if d > 0)
        message = (
            f"WER rose {pts(rise)} points ({old.wer:.2%} -> {new.wer:.2%}), beyond the tolerance of "
            f"{self.tolerance * 100:.2f}; paired bootstrap 95% CI [{pts(iv.low)}, {pts(iv.high)}] points, "
            f"p={iv.p_value:.4f}; utterances with more errors: {names}"
        )
        ref = reference.transcripts
        if ref.fp32_wer is not None and ref.wer - ref.fp32_wer > self.broken:
            return self.outcome(
                CHANGED,
                change=change,
                warning=f"{message} (not gating: this configuration's baseline WER is already "
                f"{(ref.wer - ref.fp32_wer) * 100:.0f} points above fp32, where greedy transcripts are "
                "chaotic; its weights and teacher-forced outputs gate it)",
            )
        return self.outcome(REGRESSED, failure=message, change=change)


@register
class SpeedCheck(Check):
    """Relative cost on the fixed workload (configuration time / fp32 time, interleaved rounds) against the
    same machine profile's reference, on the rounds measured in a machine state (memory/compute balance,
    ``speed.REGIME_TOLERANCE``) the reference holds a cost for. ``tolerance`` is the slowdown the check exists
    to catch (0.2: 20%). A measurement beyond a quarter of it is suspect and gets more rounds (``suspect``); the
    check fails when the slowdown is beyond three quarters of it (``FAIL_AT``) and its 95% interval excludes no
    change, so that a slowdown of the full tolerance is caught although a measurement of it scatters by a few
    percent.

    Measured on a 2-core VM (``whisper-ptq-bench perf --regimes`` and ``--speed-trials``): within one machine
    state the ratio of a configuration to fp32 stays within a few percent of its baseline; the machine switched
    states for seconds to minutes with nothing running, and weight-only configurations then ran 20-30% slower
    relative to fp32. Before rounds were judged by state, such switches turned A/A runs red (1.15x, 1.18x,
    1.25x)."""

    numerics = False  # two processes of one environment time a configuration up to 7.5% apart (A/A)

    id, part = "speed", "speed"
    FAIL_AT = 0.75

    @classmethod
    def build(cls, tol: dict) -> SpeedCheck:
        return cls(tol["speed"])

    def __init__(self, tolerance: float):
        self.tolerance = tolerance

    @staticmethod
    def not_judged(old: sp.Speed, new: sp.Speed) -> str | None:
        """Why ``new`` cannot be compared with ``old`` now: fewer than two of its rounds were measured in a
        machine state (memory/compute balance) ``old`` holds a cost for."""
        if new.in_state_of(old) is not None:
            return None
        now = (
            f"was {new.state:.2f} in the rounds timed for this configuration"
            if new.state is not None
            else "changed during every round timed for this configuration"
        )
        recorded = " and ".join(f"{ref.state:.2f}" for ref in old.references())
        return (
            f"speed not judged: the machine's memory/compute balance {now}; the baseline holds costs for "
            f"{recorded} (a state is within {sp.REGIME_TOLERANCE:.0%}). In another state weight-only "
            "configurations run 20-30% slower or faster relative to fp32 with nothing changed (README, Speed). "
            "Rerun later, or run --ptq-update-baselines in this state: a recording keeps the costs of the other "
            "states measured with the same libraries on this machine profile"
        )

    def fails(self, old: sp.Speed, new: sp.Speed) -> str | None:
        judged = new.slowdown(old)
        if judged is None:
            return None
        slowdown, low, high, new, ref = judged
        where = f" in the machine state the baseline measured it in (balance {ref.state:.2f})" if ref.state else ""
        if slowdown > 1 + self.FAIL_AT * self.tolerance and low > 1:
            return (
                f"speed: {slowdown:.2f}x slower than its baseline on the fixed workload relative to fp32 "
                f"(cost {ref.cost:.3f} -> {new.cost:.3f} of fp32's time, 95% CI of the slowdown "
                f"[{low:.2f}, {high:.2f}], {new.rounds} interleaved rounds{where}; speed-up over fp32 "
                f"{1 / ref.cost:.2f}x -> {1 / new.cost:.2f}x)"
            )
        return None

    def suspect(self, old: sp.Speed, new: sp.Speed) -> bool:
        """Whether a measurement deserves more rounds before it is judged: a point estimate beyond a quarter of
        the tolerance. With a case's few rounds the interval is wide, so a real slowdown of the full tolerance
        often has one round near no change; the confirmation rounds decide, on the pooled rounds."""
        judged = new.slowdown(old)
        return judged is not None and judged[0] > 1 + self.tolerance / 4

    def applies(self, reference: Result, candidate: Result) -> bool:
        return candidate.versus is not None or (reference.speed is not None and candidate.speed is not None)

    @staticmethod
    def paired(versus: sp.Paired, tol: dict) -> Outcome:
        """Against a live reference: the candidate / reference ratio of the fixed workload timed in alternating
        rounds. A difference is claimed only when its 95% interval excludes no change and the pairs' signed-rank
        test rejects no change at ``speed_p`` (``Paired.p_value``; 0.01 over a matrix of 56 cases); then red when
        the slowdown is beyond three quarters of ``speed_pair`` (two processes of one environment differ by a few
        percent for the whole of a case, cause not found), changed when the ratio is beyond ``speed_noise``."""
        ratio, (low, high), p = versus.ratio, versus.interval(), versus.p_value()
        detail = (
            f"speed {ratio:.3f}x the reference environment's ({len(versus.ratios)} alternating pairs, 95% CI "
            f"[{low:.3f}, {high:.3f}], signed-rank p={p:.3g})"
        )
        if not (low > 1 or high < 1) or p >= tol["speed_p"]:
            return Outcome("speed", IDENTICAL, detail=detail)
        if ratio > 1 + 0.75 * tol["speed_pair"]:
            return Outcome(
                "speed",
                REGRESSED,
                failure=f"speed: {ratio:.2f}x slower than in the reference environment on the fixed workload "
                f"(95% CI [{low:.2f}, {high:.2f}], signed-rank p={p:.2g}, {len(versus.ratios)} pairs timed in "
                f"alternating rounds; median {np.median(versus.reference):.4f} s -> {np.median(versus.candidate):.4f} s)",
                detail=detail,
            )
        if abs(ratio - 1) > tol["speed_noise"]:
            change = f"{abs(ratio - 1):.1%} {'slower' if ratio > 1 else 'faster'} than the reference environment"
            return Outcome("speed", CHANGED, change=change, detail=detail)
        return Outcome("speed", IDENTICAL, detail=detail)

    def compare(self, reference: Result, candidate: Result, context: Context) -> Outcome:
        if candidate.versus is not None:
            return self.paired(candidate.versus, context.tol)
        old, new = reference.speed, candidate.speed
        timing = new.timing
        if not new.steady:
            return self.outcome(
                NOT_COMPARED,
                warning=f"speed not judged: other processes used {timing.foreign_load:.0%} of the CPUs and "
                f"the fp32 rounds varied by {timing.fp32_spread:.0%} while this case was timed (twice); "
                "rerun on a quiet machine",
            )
        elsewhere = self.not_judged(old, new)
        if elsewhere:
            return self.outcome(NOT_COMPARED, warning=elsewhere)
        ratio, low, high, same, _ = new.slowdown(old)
        detail = f"speed {ratio:.3f}x its baseline ({same.rounds} rounds, 95% CI [{low:.3f}, {high:.3f}])"
        message = self.fails(old, new)
        if message:
            return self.outcome(REGRESSED, failure=message, detail=detail)
        significant = low > 1 or high < 1
        change = f"{abs(ratio - 1):.1%} {'slower' if ratio > 1 else 'faster'}" if significant else None
        return self.outcome(CHANGED if change else IDENTICAL, change=change, detail=detail)


@register
class KernelCheck(Check):
    """The operators the configuration's fixed workload dispatches, with their counts: a changed path is reported
    with the operators added and removed (changed, not red: the speed check judges what it costs), so that speed is
    never the only witness of a fallback."""

    id, part = "kernels", "kernels"

    def compare(self, reference: Result, candidate: Result, context: Context) -> Outcome:
        change = reference.kernels.diff(candidate.kernels)
        return self.outcome(CHANGED, change=f"kernel path: {change}") if change else self.outcome(IDENTICAL)


@register
class TranscriptCheck(Check):
    """Transcripts that changed are listed even when WER holds (a warning); a failure only in strict mode."""

    id, part = "transcripts", "transcripts"

    def applies(self, reference: Result, candidate: Result) -> bool:
        old, new = reference.transcripts, candidate.transcripts
        return old is not None and old.texts is not None and new is not None and new.scored is not None

    @staticmethod
    def changed(reference: Result, candidate: Result) -> list[tuple[str, str, str, str]]:
        refs = {u.id: u.reference for u in candidate.transcripts.scored.utterances}
        old = reference.transcripts.texts
        return [
            (i, refs.get(i, ""), old.get(i, "<absent>"), new)
            for i, new in candidate.transcripts.texts.items()
            if old.get(i) != new
        ]

    @staticmethod
    def message(changes) -> str:
        lines = [f"{len(changes)} transcript(s) changed:"]
        for utt, ref, old, new in changes[:10]:
            lines.append(f"  {utt}: reference {ref!r}\n      old {old!r}\n      new {new!r}")
        if len(changes) > 10:
            lines.append(f"  ... and {len(changes) - 10} more")
        return "\n".join(lines)

    def compare(self, reference: Result, candidate: Result, context: Context) -> Outcome:
        changes = self.changed(reference, candidate)
        if not changes:
            return self.outcome(IDENTICAL)
        message = self.message(changes)
        change = f"{len(changes)} transcript(s) changed"
        if context.strict_transcripts:
            return self.outcome(REGRESSED, failure=message, change=change)
        return self.outcome(CHANGED, warning=message, change=change)
