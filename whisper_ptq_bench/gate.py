"""The gate: one place that decides, per case, what is compared, what fails, what only warns and what
could not be compared (and says why). Checks live in checks.py; this module picks and runs them."""

from __future__ import annotations

from dataclasses import dataclass, field

from whisper_ptq_bench.checks import (
    CompressionCheck,
    Obtained,
    OutputCheck,
    SameInputCheck,
    SpeedCheck,
    TranscriptCheck,
    WeightCheck,
    WerCheck,
)
from whisper_ptq_bench.configs import QuantConfig

#: Measured per machine profile for every configuration.
PROFILE_FIELDS = ("speed", "rtf", "speedup")
#: Also per profile where the backend's kernels depend on the CPU (quantized activations, bitsandbytes):
#: measured on another CPU, every activation-quantized configuration changed transcripts.
ACTIVATION_FIELDS = ("output", "wer", "words", "transcripts", "fingerprint")


def profile_bound(config: QuantConfig) -> tuple[str, ...]:
    """Entry fields of ``config`` that belong to a machine profile rather than to every machine."""
    from whisper_ptq_bench.backends import get_backend

    return PROFILE_FIELDS + (ACTIVATION_FIELDS if get_backend(config.backend).kernel_dependent(config) else ())


def split_entry(entry: dict, config: QuantConfig) -> tuple[dict, dict]:
    """(portable part, this profile's part) of an obtained entry."""
    bound = set(profile_bound(config))
    return {k: v for k, v in entry.items() if k not in bound}, {k: v for k, v in entry.items() if k in bound}


def peers(entry: dict, profile: str, machines: dict | None, machine: dict | None) -> list[tuple[str, dict]]:
    """(profile key, teacher-forced output) recorded for this case on the other machine profiles of this device kind
    and architecture: what an activation-quantized case on a new profile is compared with, at ``kl_across``."""
    if not machines or not machine:
        return []
    out = []
    for key, part in sorted(entry.get("profiles", {}).items()):
        other = machines.get(key) or {}
        if key == profile or "output" not in part:
            continue
        if other.get("device") == machine.get("device") and other.get("arch") == machine.get("arch"):
            out.append((key, part["output"]))
    return out


def across_profiles(obtained: Obtained, outputs: list[tuple[str, dict]], tol: dict) -> str | None:
    """A failure only when the KL divergence rose beyond ``kl_across`` against every other profile's output: an
    activation-quantized output differs between CPUs' integer kernels, by at most 7% of the KL where measured
    (AVX2 against AVX-512 kernels on one CPU), so the allowance is wider than on the same profile."""
    check = OutputCheck(tol["kl_across"], None, tol["alpha"])
    first = None
    for key, output in outputs:
        message = check.fails(obtained, {"output": output})
        if message is None:
            return None
        first = first or message.replace("output: ", f"output (against machine profile {key}, another CPU): ", 1)
    return first


def expected_view(entry: dict, profile: str) -> tuple[dict, bool]:
    """The portable part of a baseline entry merged with the part recorded on ``profile`` (if any)."""
    merged = {k: v for k, v in entry.items() if k != "profiles"}
    part = entry.get("profiles", {}).get(profile)
    if part:
        merged.update(part)
    return merged, part is not None


@dataclass
class Verdict:
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "failed" if self.failures else "ok"


def judge(
    obtained: Obtained,
    config: QuantConfig,
    entry: dict,
    tol: dict,
    profile: str,
    strict_transcripts: bool,
    machines: dict | None = None,
    machine: dict | None = None,
) -> Verdict:
    """Compare one case with its baseline entry; every check runs at most once. ``machines`` (the baselines'
    profiles) and ``machine`` (this one) let an activation-quantized output recorded only on other CPUs be judged
    at the wider tolerance across machines instead of not at all."""
    verdict = Verdict()
    expected, same_profile = expected_view(entry, profile)
    same = SameInputCheck().fails(obtained, expected)
    if same:
        verdict.failures.append(same)
        return verdict
    broken = "wer" in expected and "fp32_wer" in expected and expected["wer"] - expected["fp32_wer"] > tol["broken"]
    checks = [
        WeightCheck(tol["weight"]),
        CompressionCheck(tol["compression"]),
        OutputCheck(tol["kl"], tol["nll"], tol["alpha"]),
        WerCheck(tol["wer"], tol["alpha"]),
        SpeedCheck(tol["speed"]),
    ]
    skipped, across = [], []
    for check in checks:
        name = type(check).__name__.removesuffix("Check").lower()
        if name == "output" and "output" not in expected and obtained.output:
            outputs = peers(entry, profile, machines, machine)
            if outputs:
                message = across_profiles(obtained, outputs, tol)
                verdict.checked.append("output (across profiles)")
                across = [key for key, _ in outputs]
                if message:
                    verdict.failures.append(message)
                continue
        if any(k not in expected for k in check.needs) or (name == "wer" and obtained.wer is None):
            skipped.append(name)
            continue
        if name == "speed" and obtained.speed and not obtained.speed.get("steady", True):
            verdict.warnings.append(
                f"speed not judged: other processes used {obtained.speed.get('foreign_load', 0):.0%} of the CPUs and "
                f"the fp32 rounds varied by {obtained.speed['fp32_spread']:.0%} while this case was timed (twice); "
                "rerun on a quiet machine"
            )
            continue
        elsewhere = SpeedCheck.not_judged(obtained, expected) if name == "speed" else None
        if elsewhere:
            verdict.warnings.append(elsewhere)
            continue
        message = check.fails(obtained, expected)
        verdict.checked.append(name)
        if message and name == "wer" and broken:
            verdict.warnings.append(
                f"{message} (not gating: this configuration's baseline WER is already "
                f"{(expected['wer'] - expected['fp32_wer']) * 100:.0f} points above fp32, where greedy transcripts are "
                "chaotic; its weights and teacher-forced outputs gate it)"
            )
        elif message:
            verdict.failures.append(message)
    if skipped:
        where = "this machine profile" if not same_profile else "the baseline entry"
        verdict.notes.append(f"not compared ({where} has no baseline for it): {', '.join(skipped)}")
    if across:
        verdict.notes.append(
            f"output compared with machine profile {', '.join(across)} at the tolerance across machines "
            f"(KL +{tol['kl_across']:.0%})"
        )
    if "transcripts" in expected and obtained.wer is not None:
        transcripts = TranscriptCheck(strict_transcripts)
        changes = transcripts.changed(obtained, expected)
        if changes:
            (verdict.failures if strict_transcripts else verdict.warnings).append(transcripts.message(changes))
    return verdict
