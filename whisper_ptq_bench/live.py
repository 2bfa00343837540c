"""A live reference: a second Python environment (the one an upgrade replaces) driven as a worker process, so that
each case is judged against the same case measured in that environment, on this machine, in the same run.

The worker (``python -m whisper_ptq_bench.worker``, this package installed there) speaks JSON lines on its
stdin/stdout. Per case it measures what the harness measures (weights, size, teacher-forced outputs with their
digests, transcripts) while this process measures the candidate, sends the digests of its outputs as soon as
it has them (so that the candidate may skip transcribing a case whose weights and outputs are bit-identical),
writes its log-probabilities on request (for the divergence between the two). The fixed workload is timed round
by round for the speed ratio by two further workers that do nothing else, one in each environment (roles
"reference timing" and "timing"), in alternation: both sides are timed by the same kind of process with the same
history."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from whisper_ptq_bench.baselines import DEFAULT_TOLERANCES
from whisper_ptq_bench.errors import BenchError
from whisper_ptq_bench.measure import QuantizationFailed
from whisper_ptq_bench.result import Result
from whisper_ptq_bench.speed import Paired, alternating


class WorkerError(BenchError):
    """The reference environment's worker could not start, or died, or answered what it should not."""


class LiveReference:
    """The reference environment at ``python`` (its interpreter), measuring the cases of ``options``."""

    def __init__(self, python: str, options, role: str = "reference"):
        self.python = python
        # role "reference": the environment an upgrade replaces, measuring cases; "timing": a worker of the session's
        # own environment that times the candidate's side of each pair; "reference timing": the reference
        # environment's worker that times its side (both sides timed by the same kind of process, same history)
        self.who = {
            "reference": "the reference environment",
            "timing": "this environment's timing worker",
            "reference timing": "the reference environment's timing worker",
        }[role]
        self.pending = 0  # replies the case in flight still owes
        self.waiting = False  # the worker sent its outputs and waits to be told the threads to finish on
        self.dir = Path(tempfile.mkdtemp(prefix="ptq-reference-"))
        self.log = self.dir / "worker.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            self.proc = subprocess.Popen(
                [python, "-m", "whisper_ptq_bench.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=open(self.log, "wb"),  # noqa: SIM115 (the worker writes it for as long as it lives)
                env=env,
                text=True,
                bufsize=1,
            )
        except OSError as err:
            raise WorkerError(
                f"--ptq-against {python}: cannot start it ({err.strerror}); give the python of an environment "
                "with this package installed (e.g. /path/to/venv/bin/python)"
            ) from None
        hello = self.call("hello")
        self.environment, self.profile, self.machine = hello["environment"], hello["profile"], hello["machine"]
        self.call("open", options=_options_json(options))

    # ------------------------------------------------------------------ transport
    def send(self, op: str, **args) -> None:
        try:
            self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerError(self._died()) from None

    def receive(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(self._died())
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            raise WorkerError(f"{self.who}'s worker wrote {line[:200]!r}, not a reply") from None
        if reply.get("ok") is False:
            if reply.get("kind") == "QuantizationFailed":
                raise QuantizationFailed(f"in {self.who}: {reply['error']}")
            raise WorkerError(f"{self.who} ({self.python}) failed: {reply['error']}")
        return reply

    def call(self, op: str, **args) -> dict:
        self.send(op, **args)
        return self.receive()

    def _died(self) -> str:
        code = self.proc.poll()
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        if "No module named 'whisper_ptq_bench'" in tail or "No module named whisper_ptq_bench" in tail:
            return (
                f"--ptq-against {self.python}: whisper-ptq-bench is not installed there; install it into that "
                f"environment (pip install -e {Path(__file__).resolve().parents[1]})"
            )
        return f"{self.who}'s worker ({self.python}) ended (exit {code}); its last output:\n{tail}"

    # ------------------------------------------------------------------ a case
    def start(self, model: str, corpus: str, config: str) -> None:
        """Ask for the case to be measured; the replies are read by ``outputs`` and ``result``."""
        self.send("measure", model=model, corpus=corpus, config=config)
        self.pending = 2

    def outputs(self) -> dict:
        """The reference's weight and output digests of the case started (sent before it transcribes); a
        QuantizationFailed when the case failed there first."""
        try:
            reply = self.receive()
        except QuantizationFailed:
            self.pending = 0
            raise
        if reply.get("event") != "outputs":
            raise WorkerError(f"expected the reference's outputs, got {sorted(reply)}")
        self.pending, self.waiting = 1, True
        return reply

    def go(self, threads: int) -> None:
        """Let the reference finish the case (transcription) on ``threads`` threads: all the cores when this
        process has nothing to do meanwhile (it skips transcribing a bit-identical case)."""
        self.waiting = False
        self.send("go", threads=threads)

    def result(self) -> tuple[Result, list[str]]:
        """The reference's result of the case started, and the warnings its libraries emitted."""
        try:
            reply = self.receive()
        finally:
            self.pending = 0
        return Result.from_json(reply["result"]), reply.get("library_warnings", [])

    def drain(self) -> None:
        """Read what the case started still has to say (after this process failed the case first)."""
        try:
            if self.pending == 2:
                self.outputs()
            if self.waiting:
                self.go(1)
            if self.pending == 1:
                self.result()
        except QuantizationFailed:
            pass

    def log_probs(self) -> dict:
        """The reference's teacher-forced log-probabilities per utterance of the last case (read from a file)."""
        import numpy as np

        path = self.dir / "log_probs.npz"
        self.call("export", path=str(path))
        with np.load(path) as data:
            out = {k: data[k] for k in data.files}
        path.unlink()
        return out

    def prepare(self, model: str, config: str, slow: float = 0.0) -> None:
        """``config``'s fixed workload made ready there (quantized, warmed up); ``slow`` > 0 makes each run that
        fraction slower (a busy wait after it: the speed check's error rates, ``perf.paired_trials``)."""
        self.call("prepare", model=model, config=config, slow=slow)

    def run(self) -> float:
        """One run of the prepared fixed workload there: its seconds, as the worker timed it."""
        return self.call("run")["seconds"]

    def count(self) -> int:
        """The operator calls one (untimed) run of the prepared workload dispatches there (its kernel path, summed):
        the same for the same copy."""
        return sum(self.call("count")["kernels"].values())

    def threads(self, n: int) -> None:
        self.call("threads", n=n)

    @contextmanager
    def patched(self, regression: str):
        """The drill's ``regression`` injected there for the block (its copies quantized under it are dropped)."""
        self.call("patch", name=regression)
        try:
            yield
        finally:
            self.call("unpatch")

    def time(
        self,
        model: str,
        config: str,
        candidate: LiveReference,
        workload: str,
        pairs: int,
        threads: int,
        benchmark=None,
        earlier=None,
        slow: float = 0.0,
    ) -> Paired:
        """``config``'s fixed workload timed in alternating pairs there and in ``candidate`` (the session's own
        environment's timing worker), both on ``threads`` threads: ``pairs`` pairs, or a quarter as many (at least 2,
        for pytest-benchmark's statistics) pooled with the configuration's ``earlier`` ones (timed for another
        corpus: the workload is the same); when the pooled pairs look slower (beyond a quarter of ``speed_pair``),
        more until there are three times ``pairs``. Both sides are worker processes that did nothing but prepare
        the workload, so what the session process carries (pytest's log capture, plugins, its history) is in
        neither's time."""
        for side in (self, candidate):
            side.threads(threads)
        self.prepare(model, config)
        candidate.prepare(model, config, slow)
        paired = alternating(
            self.run, candidate.run, pairs if earlier is None else max(2, pairs // 4), benchmark, workload
        )
        if earlier is not None:
            paired = earlier.pooled(paired)
        short = 3 * pairs - len(paired.ratios)
        if paired.ratio > 1 + DEFAULT_TOLERANCES["speed_pair"] / 4 and short > 0:
            paired = paired.pooled(alternating(self.run, candidate.run, short, None, workload))
        return paired

    def close(self) -> None:
        """End the worker and remove its folder (its log and exported outputs)."""
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=30)
            except (WorkerError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def _options_json(options) -> dict:
    d = asdict(options)
    return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def describe(python: str) -> str:
    return f"the reference environment ({python})" if python != sys.executable else "this environment, as reference"
