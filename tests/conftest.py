"""Hypothesis profiles, chosen with HYPOTHESIS_PROFILE=ci|dev|deep (default: ci).

ci    bounded and reproducible: 60 examples, no deadline, derandomized, no example database.
dev   local iteration: 100 random examples, failing examples kept in .hypothesis/.
deep  long search before a release or after touching the primitives: 2000 random examples.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None, print_blob=True)
settings.register_profile(
    "deep",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The pytest runs that tests start get a fresh HOME from pytester; they share this session's model cache instead
# of converting the offline checkpoint again in each one (the cache's own behaviour is tested with explicit dirs).
from whisper_ptq_bench.models.convert import default_cache_dir  # noqa: E402

os.environ.setdefault("WHISPER_PTQ_BENCH_CACHE", str(default_cache_dir()))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under `pytest -n N` each worker gets one core: torch in the worker, and the pytest runs that end-to-end
    # tests start from it, use one thread, instead of N workers each spreading threads over every core.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


# --------------------------------------------------------------------------- shared fixtures
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_en():
    """The offline tiny.en, converted once (cached on disk) and loaded once per session."""
    from whisper_ptq_bench.models import load

    return load("tiny.en")


@pytest.fixture(scope="session")
def read_clean():
    from whisper_ptq_bench.data import load_corpus

    return load_corpus("read-clean")


@pytest.fixture(scope="module")
def small():
    """A small random Whisper with the real layer layout (encoder/decoder Linear modules, 1500 positions)."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=600,
        num_mel_bins=80,
        d_model=128,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=256,
        decoder_ffn_dim=256,
        max_source_positions=1500,
        max_target_positions=64,
        pad_token_id=1,
        bos_token_id=1,
        eos_token_id=1,
        decoder_start_token_id=2,
    )
    return WhisperForConditionalGeneration(config).eval()


@pytest.fixture(autouse=True)
def _runs_started_by_a_test_are_not_xdist_workers(monkeypatch):
    """pytest-benchmark disables itself (and refuses --benchmark-only) in any process that sees
    PYTEST_XDIST_WORKER; the pytest runs a test starts, in process or not, are not xdist workers."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def recorder(tiny_en, tmp_path):
    """A harness that records baselines of tiny.en on read-clean into tmp_path (2 rounds per case), with the
    session's model; ``recorder(max_utterances)`` builds it."""

    def build(max_utterances: int):
        from whisper_ptq_bench.runner import Harness, Options

        options = Options(
            models=["tiny.en"],
            corpora=["read-clean"],
            max_utterances=max_utterances,
            rounds=2,
            update_baselines=True,
            baselines_path=tmp_path / "baselines.json",
        )
        harness = Harness(options)
        harness.models["tiny.en"] = tiny_en
        return harness

    return build


# Libraries a benchmark run imports. pytester's in-process runs drop, afterwards, every module first imported during
# the run; compiled parts (torch ops the quantization libraries register, transformers' lazy modules) cannot load
# twice in one process, so they are imported once, before any pytester fixture takes its snapshot.
_RUN_IMPORTS = (
    "whisper_ptq_bench.plugin",
    "whisper_ptq_bench.runner",
    "whisper_ptq_bench.report",
    "pytest_benchmark.plugin",
    "jiwer",
    "torch.ao.quantization",
    "hqq.core.quantize",
    "hqq.utils.patching",
    "optimum.quanto",
    "torchao.quantization",
    "torchao.utils",
    "bitsandbytes",
    "bitsandbytes.functional",
)


@pytest.fixture(scope="session")
def run_imports():
    """What a benchmark run imports, imported once in this process: then ``pytester.runpytest_inprocess`` runs the
    suite without an interpreter start and a second import of torch and transformers (8-10 s less per run on 2
    cores), and patches a test applies with ``monkeypatch`` reach the run. A fixture that uses pytester must list
    this one first. Runs that check what a fresh process imports, or that set variables a library reads at its
    import, stay ``runpytest_subprocess``."""
    import importlib
    import importlib.util

    for name in _RUN_IMPORTS:
        if importlib.util.find_spec(name.split(".")[0]) is not None:
            importlib.import_module(name)
    import transformers

    transformers.WhisperForConditionalGeneration, transformers.WhisperProcessor  # noqa: B018 (resolves lazy imports)
