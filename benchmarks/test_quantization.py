"""The quantization matrix as benchmark cases: ``pytest benchmarks/ --benchmark-only``.

Each case ``{model}/{corpus}/{config}`` quantizes a copy of the fp32 model, transcribes the corpus
under the ``benchmark`` fixture, and checks WER, compression and speed against baselines.json.
"""

import warnings

import pytest


class TranscriptsChanged(UserWarning):
    """Transcripts differ from the baseline while WER holds (a failure with --ptq-strict-transcripts)."""


def test_quantization(ptq_case, ptq_harness, benchmark):
    model, corpus, config = ptq_case
    result = ptq_harness.run_case(model, corpus, config, benchmark)
    if result.failures:
        lines = [*result.failures, *result.warnings]  # a red case also lists its changed transcripts
        pytest.fail(f"{result.case_id}:\n" + "\n".join(f"- {m}" for m in lines), pytrace=False)
    for message in result.warnings:
        warnings.warn(TranscriptsChanged(f"{result.case_id}: {message}"), stacklevel=1)
