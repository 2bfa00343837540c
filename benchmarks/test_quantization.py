"""The quantization matrix as benchmark cases: ``pytest benchmarks/ --benchmark-only``.

Each case ``{model}/{corpus}/{config}`` quantizes a copy of the fp32 model, measures its weight error,
teacher-forced divergence from fp32, size and WER, times a fixed workload interleaved with fp32 under the
``benchmark`` fixture, and checks all of them against baselines.json.
"""

import warnings

import pytest


class GateWarning(UserWarning):
    """Something the gate reports without failing: changed transcripts (a failure with
    --ptq-strict-transcripts), speed not judged on a disturbed machine, a broken configuration's WER."""


def test_quantization(ptq_case, ptq_harness, benchmark):
    model, corpus, config = ptq_case
    result = ptq_harness.run_case(model, corpus, config, benchmark)
    if result.failures:
        lines = [*result.failures, *result.warnings]  # a red case also lists its changed transcripts
        pytest.fail(f"{result.case_id}:\n" + "\n".join(f"- {m}" for m in lines), pytrace=False)
    for message in result.warnings:
        warnings.warn(GateWarning(f"{result.case_id}: {message}"), stacklevel=1)
