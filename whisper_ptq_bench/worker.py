"""The reference environment's side of a side-by-side run (``live.LiveReference`` starts it): JSON lines in on
stdin, JSON lines out on stdout; everything libraries print goes to stderr.

    hello                       -> environment, machine profile
    open options                -> a harness for the run's options (it judges nothing itself)
    measure model corpus config -> {"event": "outputs", digests...}; then it reads {"op": "go", "threads": n}
                                   (the threads to finish the case on: all of them when the session skips
                                   transcribing it) and answers {"result": ...}
    export path                 -> the last case's teacher-forced log-probabilities in an .npz file
    prepare model config slow   -> the configuration's fixed workload, warmed up (slow: a busy wait after each
                                   run, that fraction of it; the speed check's error rates)
    run                         -> one run of it: {"seconds": ..., "worked": the workload's own part of them}
    count                       -> one untimed run of it, profiled: {"kernels": operator -> calls}
                                   (``measure.kernel_path``; says which copy is prepared where a time could not)
    threads n                   -> torch's intra-op threads
    patch name / unpatch        -> the drill's regression ``name`` injected here, then taken out again
    quit

The same worker, started in the session's own environment, times the candidate's side of each alternating pair:
both sides of a pair then run in the same kind of process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path

#: warm-up runs of a configuration's fixed workload before it is timed. With none, a timing worker that had only
#: quantized ran its first 2-3 runs 10-28% slower than the reference's worker (which had measured the case); after
#: that two workers of one environment kept a ratio of their own per configuration, 0.96-1.07 over 16 pairs,
#: unchanged between run 4 and run 16 (tiny.en, 2-core EPYC). The same configuration prepared again (its
#: second corpus) gets one.
WARMUP_RUNS, WARMUP_AGAIN = 3, 1


def _reply(out, **message) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


class Worker:
    def __init__(self, out, inp=None):
        self.out, self.inp = out, inp if inp is not None else sys.stdin
        self.harness = None
        self.kept = None  # the last case's log-probabilities per utterance
        self.prepared = None  # ((model, configuration), model on device, workload, slow)
        self.injected = None  # the drill's regression in force (its context manager)

    def hello(self) -> dict:
        from whisper_ptq_bench import machine
        from whisper_ptq_bench.environment import environment

        prof = machine.profile("cpu")
        return {"environment": environment("cpu"), "machine": prof, "profile": machine.profile_key(prof)}

    def open(self, options: dict) -> dict:
        from whisper_ptq_bench.runner import Harness, Options

        fields = {f.name for f in dataclasses.fields(Options)}
        opts = {k: v for k, v in options.items() if k in fields}
        for key in ("scope", "scope_exclude"):
            opts[key] = tuple(opts.get(key, ()))
        for key in ("baselines_path", "obtained_path"):
            opts[key] = Path(opts[key])
        opts.update(against=None, judge=False)
        self.harness = Harness(Options(**opts))
        self.harness.concurrent_threads()
        return {}

    def measure(self, model: str, corpus: str, config: str) -> dict:
        from whisper_ptq_bench.configs import QuantConfig

        def announce(result, log_probs) -> None:
            self.kept = log_probs
            weights = result.weights.digests if result.weights else None
            _reply(self.out, ok=True, event="outputs", weights=weights, outputs=result.outputs.digests)
            go = json.loads(self.inp.readline() or "{}")
            if go.get("op") != "go":
                raise RuntimeError(f"expected go after the outputs, got {go!r}")
            self.threads(int(go["threads"]))

        try:
            record = self.harness.run_case(model, corpus, QuantConfig.from_id(config), announce=announce)
        finally:
            self.harness.concurrent_threads()
        return {"result": record.result.to_json(), "library_warnings": record.library_warnings}

    def export(self, path: str) -> dict:
        import numpy as np

        np.savez(path, **{utt: lp.numpy() for utt, lp in (self.kept or {}).items()})
        return {}

    def prepare(self, model: str, config: str, slow: float = 0.0) -> dict:
        from whisper_ptq_bench.configs import QuantConfig

        h = self.harness
        q, work = h.quantized(model, QuantConfig.from_id(config)), h.workload(model)
        again = self.prepared is not None and self.prepared[0] == (model, config)
        for _ in range(WARMUP_AGAIN if again else WARMUP_RUNS):
            work.run(q.model, h.options.device)
        self.prepared = ((model, config), q.model, work, slow)
        return {}

    def run(self) -> dict:
        _, model, work, slow = self.prepared
        start = time.perf_counter()
        work.run(model, self.harness.options.device)
        worked = time.perf_counter() - start
        if slow:
            until = start + worked * (1 + slow)
            while time.perf_counter() < until:
                pass
        return {"seconds": time.perf_counter() - start, "worked": worked}

    def count(self) -> dict:
        from whisper_ptq_bench import measure

        _, model, work, _ = self.prepared
        return {"kernels": measure.kernel_path(work, model, self.harness.options.device)}

    def patch(self, name: str) -> dict:
        from whisper_ptq_bench.regressions import by_name

        self.unpatch()
        self.injected = by_name(name).patch()
        self.injected.__enter__()
        self.harness.forget_quantized()  # quantize again under the patch
        return {}

    def unpatch(self) -> dict:
        if self.injected is not None:
            injected, self.injected = self.injected, None
            injected.__exit__(None, None, None)
            self.harness.forget_quantized()  # never reuse a copy made under a patch
        self.prepared = None
        return {}

    def threads(self, n: int) -> dict:
        import torch

        torch.set_num_threads(n)
        return {}


def _exit_with(parent: int, every: float = 1.0) -> None:
    """End this process when the session that started it is gone (killed, crashed): a worker left measuring on
    its own would take the cores from whatever runs next."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> int:
    _exit_with(os.getppid())
    out = os.fdopen(os.dup(1), "w", buffering=1)  # the protocol's own stdout
    os.dup2(2, 1)  # whatever libraries print goes to stderr
    sys.stdout = sys.stderr
    import transformers

    transformers.logging.set_verbosity_error()
    worker = Worker(out, sys.stdin)
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        if op == "quit":
            break
        try:
            _reply(out, ok=True, **getattr(worker, op)(**request))
        except Exception as err:  # every failure goes back to the session, which decides
            from whisper_ptq_bench.measure import QuantizationFailed

            kind = "QuantizationFailed" if isinstance(err, QuantizationFailed) else type(err).__name__
            traceback.print_exc()
            _reply(out, ok=False, kind=kind, error=str(err) or kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
