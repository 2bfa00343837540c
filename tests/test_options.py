"""Option parsers shared by the plugin and the command line, and the backends' refusal of unknown options."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_ptq_bench import options as opt
from whisper_ptq_bench.backends import backends, validate
from whisper_ptq_bench.configs import QuantConfig, matrix
from whisper_ptq_bench.errors import ConfigError


@given(st.integers(-(10**6), 10**6), st.integers(-5, 5))
def test_at_least_accepts_exactly_the_whole_numbers_from_its_minimum(n, minimum):
    parse = opt.at_least(minimum)
    if n >= minimum:
        assert parse(f" {n} ") == n
    else:
        with pytest.raises(argparse.ArgumentTypeError, match=f"must be >= {minimum}"):
            parse(str(n))


@given(st.lists(st.text(alphabet="abc.-_/ ", min_size=0, max_size=6), max_size=5))
def test_names_keeps_the_non_empty_stripped_parts_in_order(parts):
    text = ",".join(parts)
    expected = tuple(p.strip() for p in parts if p.strip())
    if expected:
        assert opt.names(text) == expected
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="empty"):
            opt.names(text)


@pytest.mark.parametrize("text", ["1.5", "abc", "", "0x10"])
def test_non_numbers_are_refused_with_the_value(text):
    with pytest.raises(argparse.ArgumentTypeError, match="not a whole number"):
        opt.positive(text)


@pytest.mark.parametrize("good", ["cpu", "cuda", "cuda:0", "cuda:12", "auto"])
def test_devices(good):
    assert opt.device(good) == good


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "CPU", "mps"])
def test_bad_devices(bad):
    with pytest.raises(argparse.ArgumentTypeError, match="is not a device"):
        opt.device(bad)


def test_environment_values_name_the_variable():
    with pytest.raises(
        ValueError, match=r"--ptq-max-utterances \(from PTQ_MAX_UTTERANCES='x'\): 'x' is not a whole number"
    ):
        opt.from_environment(opt.utterance_count, "PTQ_MAX_UTTERANCES", "x", "--ptq-max-utterances")


def test_every_shipped_configuration_passes_option_validation():
    validate(matrix("full"))


@pytest.mark.parametrize(
    "config_id,message",
    [
        ("torchao.w-int4.g128.asym.kernal=tinygemm", "torchao has no option 'kernal'; its options: kernel"),
        ("hqq.w-int4.g64.asym.foo=1", "hqq has no option 'foo'"),
        ("quanto.w-int8.channel.sym.dq=1", "quanto has no option 'dq'; its options: none"),
        ("torch-ao.dyn-int8.a-int8.tensor.sym.threshold=6", "torch-ao has no option 'threshold'"),
        ("bnb.dyn-int8.a-int8.channel.sym.threshold=x", "threshold='x' is not valid for bnb"),
        ("bnb.w-nf4.g64.sym.dq=2", "dq='2' is not valid"),
        ("hqq.w-int4.g64.asym.backend=cutlass", "backend='cutlass' is not valid for hqq"),
    ],
)
def test_an_option_a_backend_does_not_read_is_refused(config_id, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate([QuantConfig.from_id(config_id)])


def test_every_backend_option_is_read_by_its_backend():
    """An option declared but never read would be accepted and ignored: each declared key appears in the code
    of its backend's module."""
    import inspect

    for backend in backends().values():
        source = inspect.getsource(inspect.getmodule(type(backend)))
        for key in backend.options:
            assert f'option("{key}"' in source, (backend.name, key)
