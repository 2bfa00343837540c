"""Kernel speed on a fixed workload, timed in rounds interleaved with fp32: the relative cost
(configuration time / fp32 time of the same round) with a bootstrap interval, and whether the rounds were
steady enough to judge. End-to-end RTF is reported elsewhere and never gated: it measures how long a
model's transcripts are as much as how fast its kernels run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

#: fp32 rounds of one case whose slowest is more than this fraction above the fastest were disturbed by
#: something else on the machine; measured on a quiet 2-core machine: below 0.08 (README, Measured).
STEADY_SPREAD = 0.25
#: Share of the machine's CPU time that other processes may take while a case is timed before its speed is
#: not judged: a concurrent process slows some kernels far more than fp32 (measured: quanto's int8 path 20x
#: under a concurrent test run, fp32 4x), so a paired ratio does not cancel it.
FOREIGN_LOAD = 0.10


class LoadMeter:
    """CPU time that processes other than this one used while the block ran, as a share of all CPUs."""

    def __enter__(self):
        import psutil

        self._proc = psutil.Process()
        self._start = (time.perf_counter(), self._busy(), sum(self._proc.cpu_times()[:2]))
        self.share = 0.0
        return self

    @staticmethod
    def _busy() -> float:
        import psutil

        t = psutil.cpu_times()
        return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)

    def __exit__(self, *exc):
        import psutil

        wall = time.perf_counter() - self._start[0]
        busy = self._busy() - self._start[1]
        own = sum(self._proc.cpu_times()[:2]) - self._start[2]
        cpus = psutil.cpu_count() or 1
        self.share = max(0.0, (busy - own) / (wall * cpus)) if wall > 0 else 0.0
        return False


@dataclass
class Timing:
    """Paired rounds: ``fp32[i]`` and ``config[i]`` ran back to back in round i."""

    fp32: list[float] = field(default_factory=list)
    config: list[float] = field(default_factory=list)
    workload: str = ""
    foreign_load: float = 0.0  # share of all CPUs used by other processes during the latest rounds
    recent: int = 0  # rounds of the latest measurement (pooled timings keep earlier cases' rounds before them)

    @property
    def ratios(self) -> np.ndarray:
        return np.asarray(self.config, dtype=np.float64) / np.asarray(self.fp32, dtype=np.float64)

    @property
    def cost(self) -> float:
        """Median over rounds of configuration time / fp32 time (below 1: faster than fp32)."""
        return float(np.median(self.ratios))

    @property
    def fp32_spread(self) -> float:
        """(slowest - fastest) / fastest fp32 round of the latest measurement: how steady the machine was while
        this case was timed (the machine's speed may drift between cases; the paired ratio cancels that)."""
        f = np.asarray(self.fp32[-self.recent :] if self.recent else self.fp32, dtype=np.float64)
        return float((f.max() - f.min()) / f.min())

    @property
    def steady(self) -> bool:
        return len(self.fp32) >= 2 and self.fp32_spread <= STEADY_SPREAD and self.foreign_load <= FOREIGN_LOAD

    def interval(self, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
        """95% bootstrap percentile interval of the median ratio (rounds resampled with replacement)."""
        r = self.ratios
        rng = np.random.default_rng(seed)
        med = np.median(r[rng.integers(0, len(r), size=(resamples, len(r)))], axis=1)
        low, high = np.percentile(med, [2.5, 97.5])
        return float(low), float(high)

    def as_dict(self) -> dict:
        low, high = self.interval()
        return {
            "cost": self.cost,
            "ci95": [low, high],
            "speedup": 1 / self.cost if self.cost else float("nan"),
            "rounds": len(self.ratios),
            "fp32_s": [round(x, 5) for x in self.fp32],
            "config_s": [round(x, 5) for x in self.config],
            "fp32_spread": self.fp32_spread,
            "foreign_load": round(self.foreign_load, 4),
            "steady": self.steady,
            "workload": self.workload,
        }


def interleaved(run_fp32, run_config, rounds: int, benchmark=None, workload: str = "", warm_up: bool = True) -> Timing:
    """Time ``rounds`` pairs (fp32, then the configuration), after one untimed pair of warm-up (``warm_up``).

    With pytest-benchmark's fixture the configuration's rounds are its statistics (the fp32 half runs in
    the untimed ``setup`` of each round); without it the same pairs are timed here."""
    timing = Timing(workload=workload)
    if warm_up:
        run_fp32()
        run_config()

    def setup() -> None:
        start = time.perf_counter()
        run_fp32()
        timing.fp32.append(time.perf_counter() - start)

    def target() -> None:
        start = time.perf_counter()
        run_config()
        timing.config.append(time.perf_counter() - start)

    with LoadMeter() as load:
        if benchmark is not None and not getattr(benchmark, "disabled", False):
            benchmark.pedantic(target, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
        if not timing.config:
            for _ in range(rounds):
                setup()
                target()
    timing.foreign_load = load.share
    return timing


def pooled(earlier: Timing | None, now: Timing) -> Timing:
    """The rounds of ``earlier`` cases of the same configuration (same workload, same quantized model) and of
    ``now``; steadiness and load are those of ``now``."""
    if earlier is None:
        return now
    return Timing(
        earlier.fp32 + now.fp32,
        earlier.config + now.config,
        now.workload,
        now.foreign_load,
        now.recent or len(now.fp32),
    )
