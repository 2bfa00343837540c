"""Fidelity signals: weight error and teacher-forced divergence state facts, not snapshots."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from whisper_ptq_bench import fidelity as fd
from whisper_ptq_bench import scope as sc
from whisper_ptq_bench.backends import get_backend
from whisper_ptq_bench.configs import QuantConfig
from whisper_ptq_bench.data import load_corpus
from whisper_ptq_bench.transcribe import features


@given(st.integers(0, 2**16), st.floats(-0.9, 0.9).filter(lambda e: abs(e) > 1e-6))
def test_relative_error_of_a_scaled_weight_is_the_scale_change(seed, change):
    w = torch.randn(16, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert fd.relative_error(w, w) == 0.0
    assert fd.relative_error(w * (1 + change), w) == pytest.approx(abs(change), rel=1e-9)


@pytest.fixture(scope="module")
def setting(tiny_en):
    corpus = load_corpus("read-clean", 6)
    tokens = fd.reference_tokens(tiny_en.processor.tokenizer, tiny_en.generation_config, [u.text for u in corpus])
    prompt = len(fd.prompt_ids(tiny_en.generation_config))
    return tiny_en, corpus, tokens, prompt


def _compare(model, loaded, corpus, tokens, prompt, batch):
    fb = features(loaded.processor, corpus, batch)
    ref_enc = fd.encoder_outputs(loaded.model, fb, "cpu", 2)
    enc = ref_enc if model is loaded.model else fd.encoder_outputs(model, fb, "cpu", 2)
    ref = fd.reference_log_probs(loaded.model, ref_enc, fb, tokens, prompt, "cpu")
    return fd.teacher_forced(model, enc, ref, fb, tokens, prompt, "cpu")


def test_fp32_against_itself_diverges_nowhere_and_scores_every_text_token(setting):
    loaded, corpus, tokens, prompt = setting
    tf = _compare(loaded.model, loaded, corpus, tokens, prompt, 4)
    assert tf.kl == [0.0] * len(corpus) and tf.top1 == [1.0] * len(corpus)
    assert tf.tokens == [len(t) - prompt for t in tokens]  # every text token and end-of-text, nothing of the prompt
    assert all(n > 0 for n in tf.nll) and tf.finite()


def test_nll_is_the_mean_negative_log_probability_of_the_reference_tokens(setting):
    loaded, corpus, tokens, prompt = setting
    tf = _compare(loaded.model, loaded, corpus, tokens, prompt, 4)
    feats = features(loaded.processor, corpus, 1).batches[0]  # the longest utterance alone
    longest = max(range(len(corpus)), key=lambda i: len(corpus.utterances[i].audio))
    ids = torch.tensor([tokens[longest]])
    with torch.no_grad():
        logits = loaded.model(input_features=feats, decoder_input_ids=ids[:, :-1]).logits[0]
    lp = torch.log_softmax(logits.float(), -1)[prompt - 1 :]
    expected = -lp.gather(-1, ids[0, prompt:].unsqueeze(-1)).mean()
    assert tf.nll[longest] == pytest.approx(float(expected), rel=1e-4)


def test_divergence_of_a_quantized_model_is_positive_and_does_not_depend_on_batching(setting):
    loaded, corpus, tokens, prompt = setting
    config = QuantConfig.from_id("hqq.w-int4.g64.asym")
    model = (
        get_backend("hqq").quantize(copy.deepcopy(loaded.model), config, sc.select(loaded.model), "cpu", None).eval()
    )
    one = _compare(model, loaded, corpus, tokens, prompt, 1)
    many = _compare(model, loaded, corpus, tokens, prompt, 4)
    assert all(k > 0 for k in one.kl) and all(0 <= t <= 1 for t in one.top1)
    assert many.kl == pytest.approx(one.kl, rel=1e-3, abs=1e-6)
    assert many.nll == pytest.approx(one.nll, rel=1e-4)


def test_weight_errors_name_every_quantized_module_with_its_format(setting):
    loaded, *_ = setting
    config = QuantConfig.from_id("torchao.w-int8.channel.sym")
    backend = get_backend("torchao")
    requested = sc.select(loaded.model)
    model = backend.quantize(copy.deepcopy(loaded.model), config, requested, "cpu", None)
    report = sc.inspect(loaded.model, model, requested, backend)
    errors = fd.weight_errors(loaded.model, model, backend, {m.name: m.format for m in report.quantized})
    assert set(errors) == set(requested)
    assert all(0 < e < 0.02 for e, _ in errors.values())  # 8-bit per-row: well under 2% relative RMS error


def test_the_workload_is_the_same_work_for_every_model(setting):
    loaded, *_ = setting
    corpus = load_corpus("calibration")
    fb = features(loaded.processor, corpus, 1)
    tokens = fd.reference_tokens(loaded.processor.tokenizer, loaded.generation_config, [u.text for u in corpus])
    work = fd.Workload.build(fb, tokens, 1, 16)
    assert tuple(work.tokens.shape) == (1, 17) and work.tokens[0, 0] == loaded.generation_config.decoder_start_token_id
    calls = []
    original = loaded.model.forward

    @functools.wraps(original)
    def counting(*args, **kwargs):
        calls.append(kwargs["decoder_input_ids"].shape)
        return original(*args, **kwargs)

    loaded.model.forward = counting
    try:
        work.run(loaded.model, "cpu")
    finally:
        del loaded.model.forward
    assert len(calls) == 16 and all(tuple(c) == (1, 1) for c in calls)  # one token per KV-cached step
