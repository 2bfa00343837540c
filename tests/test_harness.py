"""The harness does nothing twice, and keeps library failures inside their case."""

from __future__ import annotations

import dataclasses

import pytest

from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.perf import work_counts
from whisper_ptq_bench.runner import Harness, Options, QuantizationFailed


@pytest.mark.slow
def test_each_model_loads_once_each_config_quantizes_once_each_reference_runs_once(tiny_en):
    counts = work_counts("tiny.en", ["read-clean", "read-other"], ["fp32", "bnb.w-nf4.g64.sym"], 2)
    assert counts["cases"] == 4
    assert counts["model loads"] == 1
    assert counts["quantizations"] == 2  # fp32 (identity) + the configuration, each shared by both corpora
    assert counts["fp32 reference transcriptions"] == 2  # one per corpus, by the fp32 cases themselves


def test_a_library_error_fails_its_case_and_the_session_goes_on(tiny_en, monkeypatch):
    from whisper_ptq_bench.backends.hqq import Hqq

    def broken(self, *args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(Hqq, "quantize", broken)
    harness = Harness(Options(models=["tiny.en"], corpora=["read-clean"], max_utterances=2, update_baselines=True))
    harness.models["tiny.en"] = tiny_en
    config = QuantConfig.from_id("hqq.w-int4.g64.asym")
    with pytest.raises(QuantizationFailed) as err:
        harness.run_case("tiny.en", "read-clean", config)
    from whisper_ptq_bench.backends import get_backend

    assert f"hqq (hqq {get_backend('hqq').version()})" in str(err.value) and "RuntimeError: kernel exploded" in str(
        err.value
    )
    with pytest.raises(QuantizationFailed, match="kernel exploded"):  # remembered: not quantized twice
        harness.run_case("tiny.en", "read-other", config)
    ok = harness.run_case("tiny.en", "read-clean", QuantConfig.from_id("fp32"))
    assert ok.result.transcripts is not None and not ok.failures


def test_nan_logits_fail_with_the_library_named(tiny_en, monkeypatch):
    import torch

    from whisper_ptq_bench.backends.torch_ao import TorchEager

    original = TorchEager.quantize

    def nan(self, model, *args, **kwargs):
        with torch.no_grad():
            model.model.encoder.layer_norm.weight.fill_(float("nan"))  # (torch saturates NaN weights to fp16 +-65504)
        return original(self, model, *args, **kwargs)

    monkeypatch.setattr(TorchEager, "quantize", nan)
    harness = Harness(Options(models=["tiny.en"], corpora=["read-clean"], max_utterances=2, update_baselines=True))
    harness.models["tiny.en"] = tiny_en
    with pytest.raises(QuantizationFailed, match="NaN or infinite logits"):
        harness.run_case("tiny.en", "read-clean", QuantConfig.from_id("torch-ao.dyn-fp16.a-fp16"))


@pytest.mark.slow
def test_timing_outside_the_usual_or_recorded_machine_state_gets_more_rounds_then_is_not_judged(
    tiny_en, recorder, monkeypatch
):
    """Recording while the machine is in a state it was seldom in this session gets a second set of rounds; a
    check in another state than the baseline's gets one too and, still there, a speed warning instead of a
    verdict, whatever its cost."""
    from whisper_ptq_bench import speed as sp

    config = QuantConfig.from_id("torch-ao.dyn-int8.a-int8.tensor.sym")
    monkeypatch.setattr(sp, "balance", lambda: 0.45)
    # what is tested is the machine state; a loaded runner would make rounds unsteady (timed again, or not stored)
    monkeypatch.setattr(sp.Timing, "steady", property(lambda timing: len(timing.fp32) >= 2))
    recorder = recorder(2)
    options = recorder.options
    recorder.readings = [0.24] * 12  # most of the session's rounds so far were in another state
    recorded = recorder.run_case("tiny.en", "read-clean", config)
    assert recorded.result.speed.rounds_this_case == 4 and recorded.result.speed.state == 0.45
    recorder.finish()
    monkeypatch.setattr(sp, "balance", lambda: 0.24)
    checker = Harness(dataclasses.replace(options, update_baselines=False))
    checker.models["tiny.en"] = tiny_en
    result = checker.run_case("tiny.en", "read-clean", config)
    assert result.result.speed.state == 0.24 and result.result.speed.rounds_this_case == 4  # measured twice
    assert not result.failures and any("memory/compute balance was 0.24" in w for w in result.warnings)


def test_the_kernel_path_is_taken_on_the_timings_threads_whatever_the_case_ran_on(tiny_en, monkeypatch):
    """Side by side, the two processes share the cores while a case is measured and one of them may get them all
    (the other skipped transcribing): quanto int4 and bnb LLM.int8 dispatch other operators on another thread count,
    so the fingerprint is taken on the threads the workload is timed on, before decoding."""
    import torch

    from whisper_ptq_bench import measure

    calls = []
    for name in ("kernel_path", "decode_texts"):
        original = getattr(measure, name)

        def logged(*args, _name=name, _original=original, **kwargs):
            calls.append((_name, torch.get_num_threads()))
            return _original(*args, **kwargs)

        monkeypatch.setattr(measure, name, logged)
    harness = Harness(Options(models=["tiny.en"], corpora=["read-clean"], max_utterances=2, update_baselines=True))
    harness.models["tiny.en"] = tiny_en
    harness.threads, before = 1, torch.get_num_threads()  # the timing's threads; the case runs on the session's
    harness.run_case("tiny.en", "read-clean", QuantConfig.from_id("torch-ao.dyn-fp16.a-fp16"))
    names = [n for n, _ in calls]
    assert names.count("decode_texts") == 2  # the first: fp32's reference transcripts
    assert names.index("kernel_path") < len(names) - 1 - names[::-1].index("decode_texts")
    assert dict(calls)["kernel_path"] == 1 and torch.get_num_threads() == before
