"""QuantConfig: validation names the field, ids round-trip, matrices span every library and axis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_ptq_bench.configs import (
    ACTIVATION_FORMATS,
    CODEBOOK_FORMATS,
    DEFAULT,
    FLOAT_FORMATS,
    MATRICES,
    REFERENCE,
    SMOKE,
    WEIGHT_FORMATS,
    QuantConfig,
    matrix,
)
from whisper_ptq_bench.errors import ConfigError


@st.composite
def valid_configs(draw):
    backend = draw(st.sampled_from(["torch-ao", "torchao", "quanto", "hqq", "bnb", "my-lib2"]))
    scheme = draw(st.sampled_from(["weight-only", "dynamic", "static"]))
    weight = draw(st.sampled_from(sorted(set(WEIGHT_FORMATS) - {"fp32"})))
    activation = draw(st.sampled_from(ACTIVATION_FORMATS)) if scheme != "weight-only" else None
    if weight in FLOAT_FORMATS:
        granularity = group = method = None
    else:
        granularity = draw(st.sampled_from(["per-tensor", "per-channel", "per-group"]))
        group = draw(st.integers(1, 4096)) if granularity == "per-group" else None
        method = (
            "symmetric" if weight in CODEBOOK_FORMATS | {"fp8"} else draw(st.sampled_from(["symmetric", "asymmetric"]))
        )
    keys = draw(st.lists(st.sampled_from(["dq", "threshold", "backend", "kernel"]), unique=True, max_size=2))
    options = tuple((k, draw(st.from_regex(r"[a-z0-9_]{1,6}", fullmatch=True))) for k in keys)
    return QuantConfig(backend, weight, scheme, activation, granularity, group, method, options)


@given(valid_configs())
def test_id_round_trips(cfg):
    assert QuantConfig.from_id(cfg.id) == cfg
    assert "/" not in cfg.id and " " not in cfg.id


@given(valid_configs(), valid_configs())
def test_distinct_configs_have_distinct_ids(a, b):
    assert (a.id == b.id) == (a == b)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(backend="hqq", weight="int5"), "weight"),
        (dict(backend="HQQ", weight="int4", granularity="per-group", group_size=64, method="asymmetric"), "backend"),
        (
            dict(
                backend="hqq",
                weight="int4",
                scheme="sometimes",
                granularity="per-group",
                group_size=64,
                method="asymmetric",
            ),
            "scheme",
        ),
        (dict(backend="hqq", weight="int4", granularity="per-group", method="asymmetric"), "group_size"),
        (
            dict(backend="hqq", weight="int4", granularity="per-tensor", group_size=64, method="asymmetric"),
            "group_size",
        ),
        (dict(backend="hqq", weight="int4", granularity="per-row", method="asymmetric"), "granularity"),
        (dict(backend="hqq", weight="int4", granularity="per-channel"), "method"),
        (dict(backend="bnb", weight="nf4", granularity="per-group", group_size=64, method="asymmetric"), "method"),
        (
            dict(backend="torch-ao", weight="int8", scheme="dynamic", granularity="per-tensor", method="symmetric"),
            "activation",
        ),
        (
            dict(backend="hqq", weight="int4", activation="int8", granularity="per-channel", method="symmetric"),
            "activation",
        ),
        (
            dict(backend="torch-ao", weight="fp16", scheme="dynamic", activation="fp16", method="symmetric"),
            "granularity/method",
        ),
        (dict(backend="none", weight="int8", scheme="none"), "weight"),
        (
            dict(
                backend="hqq", weight="int4", granularity="per-channel", method="asymmetric", options=(("dq", "0.5"),)
            ),
            "options",
        ),
    ],
)
def test_invalid_combinations_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        QuantConfig(**kwargs)
    assert str(err.value).startswith(field)


@pytest.mark.parametrize("text", ["hqq", "hqq.x-int4.g64.asym", "hqq.w-int4.g64.asym.wat", "hqq.w-int4.asym.g64"])
def test_bad_ids_are_refused_with_the_offending_part(text):
    with pytest.raises(ConfigError, match="config id"):
        QuantConfig.from_id(text)


def test_reference_is_fp32_and_first_in_every_matrix():
    assert REFERENCE.id == "fp32" and QuantConfig.from_id("fp32") == REFERENCE
    for name in MATRICES:
        assert matrix(name)[0] == REFERENCE
    assert matrix("hqq.w-int4.g64.asym")[0] == REFERENCE


def test_default_matrix_spans_every_library_and_axis():
    configs = matrix("default")
    assert 25 <= len(configs) <= 40
    assert {c.backend for c in configs} >= {"torch-ao", "torchao", "quanto", "hqq", "bnb"}
    assert {c.scheme for c in configs} >= {"dynamic", "static", "weight-only"}
    assert {c.method for c in configs} >= {"symmetric", "asymmetric"}
    assert {c.granularity for c in configs} >= {"per-tensor", "per-channel", "per-group"}
    assert {c.weight for c in configs} >= {"int8", "int4", "int3", "int2", "nf4", "fp4", "fp8", "fp16"}
    assert {c.group_size for c in configs if c.granularity == "per-group"} >= {32, 64, 128}
    assert set(SMOKE) <= set(DEFAULT)


def test_full_matrix_reaches_one_bit_and_keeps_ids_unique():
    ids = [c.id for c in matrix("full")]
    assert len(ids) == len(set(ids))
    assert any(c.weight == "int1" for c in matrix("full"))


def test_axes_are_reported_flat():
    axes = QuantConfig.from_id("bnb.w-nf4.g64.sym.dq=1").axes()
    assert axes == {
        "backend": "bnb",
        "scheme": "weight-only",
        "method": "symmetric",
        "granularity": "per-group(64)",
        "weight": "nf4",
        "bits": 4,
        "activation": "-",
        "options": {"dq": "1"},
    }
