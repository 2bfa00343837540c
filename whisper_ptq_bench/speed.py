"""Kernel speed on a fixed workload, timed in rounds interleaved with fp32: the relative cost
(configuration time / fp32 time of the same round) with a bootstrap interval, whether the rounds were
steady enough to judge, and the machine's memory/compute balance in each round (its state: a ratio
measured in one state is compared only with a baseline recorded in the same state). End-to-end RTF is
reported elsewhere and never gated: it measures how long a model's transcripts are as much as how fast
its kernels run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from whisper_ptq_bench.metrics import resampled

#: fp32 rounds of one case whose slowest is more than this fraction above the fastest were disturbed by
#: something else on the machine; measured on a quiet 2-core machine: below 0.08 (README, Measured).
STEADY_SPREAD = 0.25
#: Share of the machine's CPU time that other processes may take while a case is timed before its speed is
#: not judged: a concurrent process slows some kernels far more than fp32 (measured: quanto's int8 path 20x
#: under a concurrent test run, fp32 4x), so a paired ratio does not cancel it.
FOREIGN_LOAD = 0.10
#: Rounds whose memory/compute balance is within this fraction of the baseline's are in its state. On a 2-core
#: VM the balance switched between two states with nothing running (``whisper-ptq-bench perf --regimes``):
#: 3.06 and 1.55 (streaming about twice as fast), and weight-only configurations of three libraries 16-25%
#: slower relative to fp32 in the second; within a state 90% of readings lay within about 8% of its median.
REGIME_TOLERANCE = 0.25
#: Rounds in a state below which its cost is neither recorded nor judged.
MIN_STATE_ROUNDS = 2
#: A suspect slowdown is re-timed with this many times ``rounds`` more rounds before it is judged.
CONFIRM_FACTOR = 3


def states(values) -> list[tuple[float, np.ndarray]]:
    """The machine states balance readings fall into, largest first: (median balance, mask of its readings).
    Readings of 0.0 (a switch during the round) belong to none."""
    values = np.asarray(values, dtype=np.float64)
    left, found = values > 0, []
    while left.any():
        counts = [int((in_state(values, b) & left).sum()) if left[i] else -1 for i, b in enumerate(values)]
        mask = in_state(values, values[int(np.argmax(counts))]) & left
        found.append((float(np.median(values[mask])), mask))
        left &= ~mask
    return found


def describe_states(values) -> str:
    """One line: each state's balance and share of the rounds, and the rounds during a switch."""
    values = np.asarray(values, dtype=np.float64)
    parts = [f"{state:.2f} in {int(mask.sum())}" for state, mask in states(values)]
    switching = int((values <= 0).sum())
    return f"{', '.join(parts)} of {len(values)} rounds" + (f" ({switching} during a switch)" if switching else "")


class BalanceProbe:
    """The machine's memory/compute balance: time to stream a buffer far larger than any CPU cache (a sum on
    every core) over time of arithmetic on a cache-resident one (one core). Neither depends on a quantization
    library, and neither calls the BLAS, whose threads would keep spinning into the timed workload after it."""

    def __init__(self, stream_mib: int = 256, steps: int = 200):
        import torch

        self.stream = torch.ones(stream_mib * 1024 * 1024 // 4)
        self.small = torch.linspace(-1.0, 1.0, 16 * 1024)  # 64 KiB, under the parallel grain: one thread
        self.out = torch.empty_like(self.small)
        self.steps = steps

    def __call__(self) -> float:
        import torch

        with torch.no_grad():
            start = time.perf_counter()
            self.stream.sum()
            memory = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(self.steps):
                torch.sin(self.small, out=self.out)
            compute = time.perf_counter() - start
        return memory / compute


_probe: BalanceProbe | None = None


def balance() -> float:
    """One reading of this machine's memory/compute balance (the probe is built on first use)."""
    global _probe
    if _probe is None:
        _probe = BalanceProbe()
        _probe()  # first touch of the buffer
    return _probe()


def in_state(values, reference: float, tolerance: float = REGIME_TOLERANCE) -> np.ndarray:
    """Which balance readings are within ``tolerance`` (as a ratio, either way) of ``reference``."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.abs(np.log(values / reference)) <= np.log1p(tolerance)) & (values > 0)


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
    # the machine's memory/compute balance in each round: read before it, and 0.0 where the reading after it
    # (before the next) was not in the same state: the machine switched during the round, which belongs to none
    balance: list[float] = field(default_factory=list)

    @property
    def state(self) -> float | None:
        """The machine state most rounds were measured in (``states``' largest), or None when not probed (e.g.
        on a GPU) or when the state changed during every round."""
        found = states(self.balance) if len(self.balance) == len(self.fp32) else []
        return found[0][0] if found else None

    def in_state(self, reference: float, tolerance: float = REGIME_TOLERANCE) -> Timing:
        """The rounds measured while the machine's balance was within ``tolerance`` of ``reference``."""
        if len(self.balance) != len(self.fp32):
            return self
        keep = in_state(self.balance, reference, tolerance)
        pick = lambda xs: [x for x, k in zip(xs, keep) if k]  # noqa: E731
        return Timing(pick(self.fp32), pick(self.config), self.workload, self.foreign_load, 0, pick(self.balance))

    def dominant(self) -> Timing:
        """The rounds in the machine state most rounds were in: what a baseline records as the cost."""
        state = self.state
        return self if state is None else self.in_state(state)

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
        med = resampled(lambda r: np.median(r, axis=1), self.ratios, resamples=resamples, seed=seed)
        low, high = np.percentile(med, [2.5, 97.5])
        return float(low), float(high)

    def as_dict(self) -> dict:
        """Cost and interval over the rounds of the dominant machine state; every round's times and balance;
        in ``others`` the cost of each further state with at least two rounds (a baseline keeps them)."""
        main = self.dominant()
        cost = main.cost
        low, high = main.interval()
        others = []
        if len(self.balance) == len(self.fp32):
            for state, _ in states(self.balance)[1:]:
                part = self.in_state(state)
                if len(part.fp32) >= MIN_STATE_ROUNDS:
                    others.append(part.reference(state))
        return {
            "cost": cost,
            "ci95": [low, high],
            "speedup": 1 / cost if cost else float("nan"),
            "rounds": len(self.ratios),
            "state": self.state,
            "state_rounds": len(main.ratios),
            "others": others,
            "balance": [round(x, 4) for x in self.balance],
            "fp32_s": [round(x, 5) for x in self.fp32],
            "config_s": [round(x, 5) for x in self.config],
            "fp32_spread": self.fp32_spread,
            "foreign_load": round(self.foreign_load, 4),
            "steady": self.steady,
            "workload": self.workload,
        }

    def reference(self, state: float | None) -> dict:
        """These rounds as one state's reference: its balance, cost, interval and number of rounds."""
        low, high = self.interval()
        return {"state": state, "cost": self.cost, "ci95": [low, high], "rounds": len(self.fp32)}


def interleaved(
    run_fp32, run_config, rounds: int, benchmark=None, workload: str = "", warm_up: bool = True, probe=None
) -> Timing:
    """Time ``rounds`` pairs (fp32, then the configuration), after one untimed pair of warm-up (``warm_up``);
    ``probe`` (e.g. ``balance``) is read before each round and after the last, untimed; a round whose two
    readings are in different machine states gets balance 0.0 (in no state).

    With pytest-benchmark's fixture the configuration's rounds are its statistics (the fp32 half runs in
    the untimed ``setup`` of each round); without it the same pairs are timed here."""
    timing = Timing(workload=workload)
    if warm_up:
        run_fp32()
        run_config()

    reads: list[float] = []

    def setup() -> None:
        if probe is not None:
            reads.append(probe())
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
    if probe is not None:
        reads.append(probe())
        timing.balance = [a if in_state([b], a)[0] else 0.0 for a, b in zip(reads, reads[1:])]
    return timing


def time_case(measure, rounds: int, earlier: Timing | None, other_state, suspect) -> Timing:
    """One case's timing as the harness takes it (and ``whisper-ptq-bench perf --speed-trials`` judges it):
    ``measure(first, n)`` times n interleaved rounds (``first``: the case's first set, which pytest-benchmark sees).
    Its rounds, timed once more when disturbed; when they are steady but ``other_state(pooled)`` (outside the machine state
    the baseline holds, or when recording outside the session's usual one), one more set pooled with them; when
    steady and ``suspect(pooled)`` (a slowdown beyond a quarter of the tolerance), CONFIRM_FACTOR x more rounds
    pooled with them, whose steadiness then decides whether the case is judged. ``pooled`` is the rounds with the
    configuration's ``earlier`` steady ones; the case's own rounds are returned."""
    timing = measure(True, rounds)
    if not timing.steady:  # disturbed by something else on the machine: one more try
        timing = measure(False, rounds)
    elif other_state(pooled(earlier, timing)):
        # another memory/compute state than at baseline (such states last seconds to minutes): more rounds
        timing = pooled(timing, measure(False, rounds))
    if timing.steady and suspect(pooled(earlier, timing)):
        timing = pooled(timing, measure(False, CONFIRM_FACTOR * rounds))  # confirmed (red) or cleared
    return timing


def pooled(earlier: Timing | None, now: Timing) -> Timing:
    """The rounds of ``earlier`` cases of the same configuration (same workload, same quantized model) and of
    ``now``; steadiness and load are those of ``now``."""
    if earlier is None:
        return now
    probed = len(earlier.balance) == len(earlier.fp32) and len(now.balance) == len(now.fp32)
    return Timing(
        earlier.fp32 + now.fp32,
        earlier.config + now.config,
        now.workload,
        now.foreign_load,
        now.recent or len(now.fp32),
        earlier.balance + now.balance if probed else [],
    )


@dataclass(frozen=True)
class StateCost:
    """A configuration's cost relative to fp32 in one machine state: the state's balance (None when not probed),
    the median cost, its 95% interval and the number of rounds."""

    state: float | None
    cost: float
    ci95: tuple[float, ...] = ()
    rounds: int = 0

    @classmethod
    def of(cls, d: dict) -> StateCost:
        return cls(d.get("state"), d["cost"], tuple(d.get("ci95", ())), d.get("rounds", 0))


@dataclass(frozen=True)
class Speed:
    """A configuration's speed on the fixed workload: its cost relative to fp32 in the state most rounds were in,
    the cost in each further state (``others``), and, when measured in this run, the rounds themselves
    (``timing``). A baseline's speed has no rounds."""

    cost: float
    ci95: tuple[float, ...]
    rounds: int
    workload: str = ""
    state: float | None = None
    others: tuple[StateCost, ...] = ()
    timing: Timing | None = None
    rounds_this_case: int | None = None

    @classmethod
    def measured(cls, timing: Timing, rounds_this_case: int | None = None) -> Speed:
        d = timing.as_dict()
        return cls(
            d["cost"],
            tuple(d["ci95"]),
            d["rounds"],
            d["workload"],
            d["state"],
            tuple(StateCost.of(o) for o in d["others"]),
            timing,
            rounds_this_case,
        )

    @property
    def primary(self) -> StateCost:
        return StateCost(self.state, self.cost, self.ci95, self.rounds)

    def references(self) -> list[StateCost]:
        """The states this speed holds a cost for: its own state first, then ``others``."""
        return [self.primary, *self.others]

    @property
    def steady(self) -> bool:
        return self.timing is None or self.timing.steady

    def info(self) -> dict:
        """Everything measured: cost, interval, every round's times and balance, steadiness."""
        if self.timing is None:
            return self.entry()
        d = self.timing.as_dict()
        return d if self.rounds_this_case is None else {**d, "rounds_this_case": self.rounds_this_case}

    def entry(self) -> dict:
        """What a baseline keeps: the cost per machine state, rounded."""
        out = {
            "cost": round(self.cost, 4),
            "ci95": [round(x, 4) for x in self.ci95],
            "rounds": self.rounds,
            "workload": self.workload,
        }
        if self.state is not None:  # the machine's memory/compute balance the cost was measured in
            out["state"] = round(self.state, 4)
            others = [  # the cost in further states (this recording's, or kept from one of the same environment)
                {"state": round(o.state, 4), "cost": round(o.cost, 4), "ci95": [round(x, 4) for x in o.ci95]}
                | {"rounds": o.rounds}
                for o in self.others
            ]
            if others:
                out["others"] = others
        return out

    def with_states(self, extra: Speed) -> Speed:
        """This speed with the states of ``extra`` that it holds no cost for added to its ``others``: what a
        recording in one machine state keeps of an earlier one (same profile and versions) in another."""
        if self.state is None:
            return self
        held = [ref.state for ref in self.references()]
        others = list(self.others)
        for ref in extra.references():
            if ref.state and not any(in_state([ref.state], h)[0] for h in held):
                others.append(ref)
                held.append(ref.state)
        return replace(self, others=tuple(others))

    def in_state_of(self, old: Speed) -> tuple[Speed, StateCost] | None:
        """These rounds restricted to one of the machine states ``old`` (a baseline's) holds a cost for, and that
        state's reference: the state with most of these rounds, the recorded one on a tie. Unrestricted, against
        ``old`` itself, when either was not probed; None when no state of ``old`` has two of these rounds (then
        the two are not comparable)."""
        timing = self.timing
        if old.state is None or timing is None or len(timing.balance) != len(timing.fp32):
            return self, old.primary
        best = max(
            ((timing.in_state(ref.state), ref) for ref in old.references() if ref.state),
            key=lambda pair: len(pair[0].fp32),
        )  # max keeps the first of equals: the recorded state
        same, ref = best
        if len(same.fp32) < MIN_STATE_ROUNDS:
            return None
        low, high = same.interval()
        return replace(self, cost=same.cost, ci95=(low, high), rounds=len(same.fp32), state=ref.state), ref

    def slowdown(self, old: Speed) -> tuple[float, float, float, Speed, StateCost] | None:
        """(slowdown, its 95% CI low, high, these rounds restricted as in ``in_state_of``, the reference it is
        measured against): this cost over the held state's; None when not comparable."""
        judged = self.in_state_of(old)
        if judged is None:
            return None
        same, ref = judged
        low, high = (x / ref.cost for x in same.ci95)
        return same.cost / ref.cost, low, high, same, ref


@dataclass(frozen=True)
class Paired:
    """A workload timed in two environments in alternating rounds (reference, candidate, candidate, reference,
    ...): both share the machine and the minute, so their ratio needs no machine profile or state. ``ratios``:
    candidate / reference per adjacent pair."""

    reference: tuple[float, ...]
    candidate: tuple[float, ...]
    workload: str = ""

    @property
    def ratios(self) -> np.ndarray:
        return np.asarray(self.candidate, dtype=np.float64) / np.asarray(self.reference, dtype=np.float64)

    @property
    def ratio(self) -> float:
        """Candidate / reference time (above 1: the candidate is slower): the Hodges-Lehmann estimate over the pairs'
        log ratios, the location that goes with the signed-rank test (robust like the median, about as efficient as
        the mean: with pairs scattering 10%, the median needs half as many again for the same precision)."""
        return float(np.exp(hodges_lehmann(np.log(self.ratios))))

    def interval(self, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
        """95% bootstrap percentile interval of ``ratio`` (pairs resampled with replacement)."""
        est = resampled(hodges_lehmann, np.log(self.ratios), resamples=resamples, seed=seed)
        low, high = np.exp(np.percentile(est, [2.5, 97.5]))
        return float(low), float(high)

    def p_value(self) -> float:
        """Two-sided exact Wilcoxon signed-rank p-value of "no change" over the pairs' log ratios (scipy): the
        bootstrap interval of a few pairs excludes 1 whenever they all fall on one side (two pairs: half the time
        with nothing changed); the signed-rank test needs six or more pairs to reach 5%."""
        from scipy.stats import wilcoxon

        logs = np.log(self.ratios)
        if len(logs) < 2 or not np.any(logs):
            return 1.0
        return float(wilcoxon(logs, alternative="two-sided", method="exact" if np.all(logs) else "auto").pvalue)

    def pooled(self, more: Paired) -> Paired:
        return Paired(self.reference + more.reference, self.candidate + more.candidate, self.workload)

    def info(self) -> dict:
        low, high = self.interval()
        return {
            "ratio": self.ratio,
            "ci95": [low, high],
            "pairs": len(self.ratios),
            "p_value": round(self.p_value(), 5),
            "reference_s": [round(x, 5) for x in self.reference],
            "candidate_s": [round(x, 5) for x in self.candidate],
            "workload": self.workload,
        }


def hodges_lehmann(x: np.ndarray) -> np.ndarray:
    """Median of the Walsh averages (x_i + x_j) / 2, i <= j, along the last axis (no library ships it: scipy has
    the signed-rank test, not its estimator)."""
    i, j = np.triu_indices(np.shape(x)[-1])
    return np.median((x[..., i] + x[..., j]) / 2, axis=-1)


def alternating(run_reference, run_candidate, pairs: int, benchmark=None, workload: str = "") -> Paired:
    """Time ``pairs`` pairs in the order reference, candidate | candidate, reference | reference, candidate ...
    (ABBA: neither always runs first or after the other). ``run_reference()`` and ``run_candidate()`` each return
    their own seconds (each runs in a worker process, which times itself: both sides are timed by the same code in
    the same kind of process). With pytest-benchmark's fixture the candidate's runs are its statistics, the
    reference's run in each round's untimed setup."""
    ref: list[float] = []
    cand: list[float] = []
    rounds = {"i": 0}

    def setup() -> None:
        i = rounds["i"]
        if i % 2 == 0:  # the reference closes the previous pair (C, R) and opens this one (R, C)
            for _ in range(1 if i == 0 else 2):
                ref.append(run_reference())

    def target() -> None:
        cand.append(run_candidate())
        rounds["i"] += 1

    if benchmark is not None and not getattr(benchmark, "disabled", False):
        benchmark.pedantic(target, setup=setup, rounds=pairs, iterations=1, warmup_rounds=0)
    while rounds["i"] < pairs:
        setup()
        target()
    if pairs % 2 == 0:  # the last pair is (C, R): its reference run
        ref.append(run_reference())
    ref = ref[:pairs]
    return Paired(tuple(ref), tuple(cand), workload)
