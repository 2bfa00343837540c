"""Properties of the reference quantization primitives (whisper_ptq_bench.primitives).

Rounding tolerance used throughout (``bound``): the primitives compute in float64 from float32 scales, so
for an element that is not clipped

    |dequantize(quantize(x)) - x| <= s * (1/2 + 2**-15) + (|x| + s) * u + d / 2

with ``s`` the element's scale, ``u = eps / 2`` the unit roundoff of the output dtype (2**-24 float32,
2**-11 float16, 2**-8 bfloat16) and ``d`` its smallest subnormal.  The ``2**-15`` term covers the float32
rounding of the scale (at most ``(qmax - qmin) * 2**-24`` steps of overshoot at the range ends), the
``u`` and ``d`` terms cover the one final cast of a value of magnitude at most ``|x| + s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from whisper_ptq_bench.errors import PrimitiveError
from whisper_ptq_bench.primitives import (
    FP4_CODE,
    GRANULARITIES,
    NF4_CODE,
    SCALE_FLOOR,
    QParams,
    codebook_dequantize,
    codebook_quantize,
    compute_qparams,
    dequantize,
    expand_qparams,
    fake_quantize,
    qrange,
    quantize,
)

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
KINDS = ("elements", "gaussian", "outlier", "constant", "zeros")
# decimal exponents of gaussian data: fp16 stays inside its range even with a 1e4 outlier
EXPONENTS = {torch.float32: (-30, 30), torch.bfloat16: (-30, 30), torch.float16: (-5, 0)}
OUTLIER_GAIN = {torch.float32: (2, 6), torch.bfloat16: (2, 6), torch.float16: (2, 4)}


# ------------------------------------------------------------------------------------------------
# strategies


def _elements(dtype):
    """Any finite value of the dtype (Hypothesis favours 0, extremes and subnormals)."""
    if dtype == torch.float16:
        return st.floats(width=16, allow_nan=False, allow_infinity=False)
    if dtype == torch.bfloat16:  # float32 values that stay finite when rounded to bfloat16
        return st.floats(min_value=-(2.0**127), max_value=2.0**127, width=32)
    return st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def tensors(draw, dtypes=DTYPES, min_ndim=1, max_ndim=3, last_multiple_of=None, max_side=5):
    dtype = draw(st.sampled_from(dtypes))
    ndim = draw(st.integers(min_ndim, max_ndim))
    shape = draw(st.lists(st.integers(1, max_side), min_size=ndim, max_size=ndim))
    if last_multiple_of is not None:
        shape[-1] = last_multiple_of * draw(st.integers(1, 4))
    n = math.prod(shape)
    kind = draw(st.sampled_from(KINDS))
    if kind == "elements":
        x = torch.tensor(draw(st.lists(_elements(dtype), min_size=n, max_size=n)), dtype=torch.float64)
    elif kind == "zeros":
        x = torch.zeros(n, dtype=torch.float64)
    elif kind == "constant":
        x = torch.full((n,), draw(_elements(dtype)), dtype=torch.float64)
    else:
        gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
        exponent = draw(st.integers(*EXPONENTS[dtype]))
        x = torch.randn(n, generator=gen, dtype=torch.float64) * 10.0**exponent
        if kind == "outlier":
            gain = draw(st.integers(*OUTLIER_GAIN[dtype]))
            x[draw(st.integers(0, n - 1))] = draw(st.sampled_from((-1.0, 1.0))) * 10.0 ** (exponent + gain)
    return x.reshape(shape).to(dtype)


@dataclass
class Case:
    x: torch.Tensor
    bits: int
    symmetric: bool
    granularity: str
    axis: int
    group_size: int | None

    def qparams(self, x=None) -> QParams:
        x = self.x if x is None else x
        return compute_qparams(x, self.bits, self.symmetric, self.granularity, self.axis, self.group_size)


@st.composite
def cases(draw, dtypes=DTYPES, granularities=GRANULARITIES, symmetric=None):
    granularity = draw(st.sampled_from(granularities))
    bits = draw(st.integers(2, 8))
    sym = draw(st.booleans()) if symmetric is None else symmetric
    axis, group_size = 0, None
    if granularity == "per-group":
        group_size = draw(st.integers(1, 8))
        x = draw(tensors(dtypes, 1, 3, last_multiple_of=group_size))
    elif granularity == "per-channel":
        x = draw(tensors(dtypes, 1, 3))
        axis = draw(st.integers(-x.ndim, x.ndim - 1))
    else:
        x = draw(tensors(dtypes, 0, 3))
    return Case(x, bits, sym, granularity, axis, group_size)


# ------------------------------------------------------------------------------------------------
# tolerance helpers


def unit_roundoff(dtype) -> float:
    return torch.finfo(dtype).eps / 2


def min_subnormal(dtype) -> float:
    info = torch.finfo(dtype)
    return info.smallest_normal * info.eps


def bound(x: torch.Tensor, scale: torch.Tensor, dtype) -> torch.Tensor:
    s = scale.to(torch.float64)
    return s * (0.5 + 2**-15) + (x.to(torch.float64).abs() + s) * unit_roundoff(dtype) + min_subnormal(dtype) / 2


def abs_err(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.to(torch.float64) - b.to(torch.float64)).abs()


# ------------------------------------------------------------------------------------------------
# affine properties


@given(cases())
# the top code lands up to s/2 above max(x): beyond the dtype's finite range unless dequantize saturates
@example(Case(torch.tensor([65504.0, -100.0], dtype=torch.float16), 8, False, "per-tensor", 0, None))
@example(Case(torch.tensor([3.4028234e38, -1e37]), 8, False, "per-tensor", 0, None))
def test_round_trip_error_at_most_half_step(case):
    """Every element, with qparams computed from x itself, comes back within half a step (+ rounding)."""
    qp = case.qparams()
    xh = dequantize(quantize(case.x, qp), qp)
    scale, _ = expand_qparams(qp, case.x.shape)
    assert (abs_err(xh, case.x) <= bound(case.x, scale, case.x.dtype)).all()


@given(cases(), st.floats(min_value=0.05, max_value=3.0))
def test_round_trip_with_foreign_qparams_inside_range_and_saturates_outside(case, gain):
    """qparams from gain * x: elements inside [(qmin - zp - 1/2) s, (qmax - zp + 1/2) s] are within half a
    step; elements outside get the end code."""
    y = (case.x.to(torch.float64) * gain).to(case.x.dtype)
    if not bool(torch.isfinite(y).all()):
        return
    qp = case.qparams(y)
    q = quantize(case.x, qp)
    xh = dequantize(q, qp)
    s, zp = (t.to(torch.float64) for t in expand_qparams(qp, case.x.shape))
    x64 = case.x.to(torch.float64)
    lo, hi = (qp.qmin - zp - 0.5) * s, (qp.qmax - zp + 0.5) * s
    inside = (x64 >= lo) & (x64 <= hi)
    assert (abs_err(xh, case.x) <= bound(case.x, s, case.x.dtype))[inside].all()
    assert (q[x64 < lo] == qp.qmin).all() and (q[x64 > hi] == qp.qmax).all()


@given(cases(), st.integers(0, 2**32 - 1))
def test_quantize_of_dequantize_is_identity(case, seed):
    """quantize(dequantize(q)) == q for every code q.  Dequantized to float32 this always holds; in a
    narrower dtype it holds when the cast cannot move a value by half a step (max|q - zp| * u < 1/2),
    no value is below the dtype's normal range and none overflows it."""
    qp = case.qparams()
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(qp.qmin, qp.qmax + 1, case.x.shape, generator=gen, dtype=torch.int32)
    s = qp.scale.to(torch.float64)
    zp = qp.zero_point.to(torch.float64)
    max_mag = torch.maximum(qp.qmax - zp, zp - qp.qmin)
    checked = 0
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        info = torch.finfo(dtype)
        if (max_mag * unit_roundoff(dtype) >= 0.49).any() or (s < info.smallest_normal).any():
            continue
        if (max_mag * s > info.max).any():
            continue
        assert torch.equal(quantize(dequantize(codes, qp, dtype), qp), codes), dtype
        checked += 1
    assert checked >= 1 or float(qp.scale.max()) > 1e36  # float32 is always checked short of overflow


@given(cases())
def test_zero_is_exact(case):
    """The zero point is an integer code in range, so 0 -> zero_point -> exactly 0 (any data, any scheme)."""
    qp = case.qparams()
    assert qp.zero_point.dtype == torch.int32
    assert ((qp.zero_point >= qp.qmin) & (qp.zero_point <= qp.qmax)).all()
    zeros = torch.zeros_like(case.x)
    q0 = quantize(zeros, qp)
    assert torch.equal(q0, expand_qparams(qp, case.x.shape)[1])
    assert (dequantize(q0, qp) == 0).all()
    xh = dequantize(quantize(case.x, qp), qp)
    assert (xh[case.x == 0] == 0).all()


@given(cases(), st.floats(min_value=1e-3, max_value=1e3))
def test_codes_within_range(case, gain):
    """Codes are int32 in [qmin, qmax] even for data far outside the qparams' range."""
    qp = case.qparams()
    big = (case.x.to(torch.float64) / gain).to(case.x.dtype)
    if not bool(torch.isfinite(big).all()):
        return
    for t in (case.x, big):
        q = quantize(t, qp)
        assert q.dtype == torch.int32 and q.shape == case.x.shape
        assert int(q.min()) >= qp.qmin and int(q.max()) <= qp.qmax


@given(cases(symmetric=True), st.floats(min_value=0.05, max_value=3.0))
def test_symmetric_codes_are_odd(case, gain):
    """With the restricted symmetric range, quantize(-x) == -quantize(x), clipped values included."""
    y = (case.x.to(torch.float64) * gain).to(case.x.dtype)
    if not bool(torch.isfinite(y).all()):
        return
    qp = case.qparams(y)
    assert torch.equal(quantize(-case.x, qp), -quantize(case.x, qp))


def test_qrange_convention():
    assert [qrange(b, True) for b in range(2, 9)] == [(-(2 ** (b - 1) - 1), 2 ** (b - 1) - 1) for b in range(2, 9)]
    assert [qrange(b, False) for b in range(2, 9)] == [(0, 2**b - 1) for b in range(2, 9)]


@given(cases(granularities=("per-tensor",)))
def test_scale_and_error_bound_shrink_as_bits_grow(case):
    """TRUE monotonicity: the per-tensor scale never grows with bits (s_{b+1} <= s_b), so the worst-case
    error bound s/2 shrinks, and the max error at b+1 bits is within the bound guaranteed at b bits."""
    prev = None
    for bits in range(2, 9):
        qp = compute_qparams(case.x, bits, case.symmetric)
        err = abs_err(dequantize(quantize(case.x, qp), qp), case.x).max()
        if prev is not None:
            assert float(qp.scale) <= float(prev.scale)
            assert err <= bound(case.x, prev.scale, case.x.dtype).max()
        prev = qp


NESTED = [(b, c) for b in range(2, 9) for c in range(b + 1, 9) if (c - 1) % (b - 1) == 0]


@given(cases(granularities=("per-tensor",), symmetric=True), st.sampled_from(NESTED))
@example(Case(torch.tensor([1.0, 1 / 3, 2 / 3, -0.2]), 3, True, "per-tensor", 0, None), (3, 5))
def test_error_never_grows_on_nested_grids(case, pair):
    """Symmetric per-tensor: when (b - 1) divides (c - 1), qmax_b divides qmax_c, the b-bit grid is a
    subset of the c-bit grid, and every element's error at c bits is <= its error at b bits (up to the
    float32 rounding of the two scales, absmax * 2**-22, and the final cast).  Scales at the floor are
    excluded: there the grids are no longer nested."""
    b, c = pair
    x = case.x
    qb, qc = compute_qparams(x, b, True), compute_qparams(x, c, True)
    if float(qc.scale) <= SCALE_FLOOR:
        return
    eb = abs_err(dequantize(quantize(x, qb), qb), x)
    ec = abs_err(dequantize(quantize(x, qc), qc), x)
    absmax = x.to(torch.float64).abs().max()
    cast = 2 * ((x.to(torch.float64).abs() + float(qb.scale)) * unit_roundoff(x.dtype) + min_subnormal(x.dtype))
    assert (ec <= eb + absmax * 2**-22 + cast).all()


def test_max_error_is_not_monotone_in_bits():
    """The stronger statement 'max abs error at b+1 bits <= at b bits' is FALSE: [1, 1/3] is exact at
    3 bits (grid k/3) but not at 4 bits (grid k/7)."""
    x = torch.tensor([1.0, 1 / 3])
    err3 = abs_err(fake_quantize(x, 3), x).max()
    err4 = abs_err(fake_quantize(x, 4), x).max()
    assert err3 == 0 and err4 > 0.04


@given(
    tensors(min_ndim=1, max_ndim=1, max_side=8),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(2, 8),
    st.booleans(),
)
def test_identical_groups_equal_per_tensor(g, rows, n_groups, bits, symmetric):
    """Per-group over n identical groups == per-tensor over one group, repeated."""
    x = g.repeat(rows, n_groups)
    qg = compute_qparams(x, bits, symmetric, "per-group", group_size=g.numel())
    qt = compute_qparams(g, bits, symmetric)
    assert (qg.scale == qt.scale).all() and (qg.zero_point == qt.zero_point).all()
    assert torch.equal(quantize(x, qg), quantize(g, qt).repeat(rows, n_groups))
    assert torch.equal(fake_quantize(x, qparams=qg), fake_quantize(g, qparams=qt).repeat(rows, n_groups))


@given(cases(granularities=("per-channel",)))
def test_per_channel_equals_per_tensor_per_slice(case):
    """Per-channel along axis == per-tensor applied to each slice x.select(axis, i)."""
    out = fake_quantize(case.x, case.bits, case.symmetric, "per-channel", case.axis)
    for i in range(case.x.shape[case.axis]):
        sl = case.x.select(case.axis, i)
        assert torch.equal(out.select(case.axis, i), fake_quantize(sl, case.bits, case.symmetric))


@given(cases())
def test_shape_dtype_and_scale_preserved(case):
    qp = case.qparams()
    assert qp.dtype == case.x.dtype and qp.scale.dtype == torch.float32
    assert (qp.scale > 0).all() and (qp.scale >= SCALE_FLOOR).all()
    q = quantize(case.x, qp)
    assert q.shape == case.x.shape and q.dtype == torch.int32
    out = fake_quantize(case.x, case.bits, case.symmetric, case.granularity, case.axis, case.group_size)
    assert out.shape == case.x.shape and out.dtype == case.x.dtype
    assert bool(torch.isfinite(out).all())


@given(cases(), st.sampled_from((float("nan"), float("inf"), float("-inf"))), st.integers(0, 10**6))
def test_non_finite_input_refused(case, bad, pos):
    qp = case.qparams()
    x = case.x.clone()
    x.view(-1)[pos % x.numel()] = bad
    for call in (
        lambda: compute_qparams(x, case.bits, case.symmetric, case.granularity, case.axis, case.group_size),
        lambda: quantize(x, qp),
        lambda: fake_quantize(x, case.bits, case.symmetric, case.granularity, case.axis, case.group_size),
        lambda: codebook_quantize(x, NF4_CODE, 4),
    ):
        with pytest.raises(PrimitiveError, match=r"x contains non-finite values"):
            call()


def test_constant_and_zero_tensors():
    for bits in (2, 4, 8):
        for sym in (True, False):
            z = torch.zeros(3, 4)
            qp = compute_qparams(z, bits, sym)
            assert float(qp.scale) == SCALE_FLOOR
            assert torch.equal(fake_quantize(z, bits, sym), z)
            c = torch.full((3, 4), -2.5)
            assert torch.equal(fake_quantize(c, bits, sym), c)
            assert torch.equal(fake_quantize(c, bits, sym, "per-group", group_size=2), c)


_X = torch.randn(4, 8)
_QP = compute_qparams(_X, 4)


@pytest.mark.parametrize(
    "call, match",
    [
        pytest.param(lambda: compute_qparams(_X, 1), r"bits must be in 2\.\.8, got 1", id="bits-1"),
        pytest.param(lambda: compute_qparams(_X, 9), r"bits must be in 2\.\.8, got 9", id="bits-9"),
        pytest.param(lambda: compute_qparams(_X, 4.0), r"bits must be an int", id="bits-float"),
        pytest.param(lambda: compute_qparams(_X, True), r"bits must be an int", id="bits-bool"),
        pytest.param(
            lambda: compute_qparams(_X, 4, granularity="per-row"), r"granularity must be one of", id="granularity"
        ),
        pytest.param(
            lambda: compute_qparams(_X, 4, granularity="per-group", group_size=3),
            r"group_size=3 does not divide",
            id="group-not-dividing",
        ),
        pytest.param(
            lambda: compute_qparams(_X, 4, granularity="per-group"), r"group_size is required", id="group-missing"
        ),
        pytest.param(
            lambda: compute_qparams(_X, 4, granularity="per-group", group_size=0),
            r"group_size must be a positive",
            id="group-zero",
        ),
        pytest.param(
            lambda: compute_qparams(_X, 4, granularity="per-channel", axis=2),
            r"axis=2 is out of range",
            id="axis-out-of-range",
        ),
        pytest.param(lambda: compute_qparams(torch.empty(0, 3), 4), r"x is empty", id="empty"),
        pytest.param(
            lambda: compute_qparams(torch.ones(3, dtype=torch.int32), 4),
            r"x must be a floating-point",
            id="integer-dtype",
        ),
        pytest.param(lambda: compute_qparams([1.0, 2.0], 4), r"x must be a torch\.Tensor", id="not-a-tensor"),
        pytest.param(
            lambda: quantize(torch.randn(4, 7), compute_qparams(_X, 4, granularity="per-group", group_size=4)),
            r"group_size=4 does not divide",
            id="quantize-group-mismatch",
        ),
        pytest.param(
            lambda: quantize(torch.randn(3, 8), compute_qparams(_X, 4, granularity="per-channel")),
            r"x of shape \(3, 8\) does not match",
            id="quantize-shape-mismatch",
        ),
        pytest.param(
            lambda: dequantize(torch.tensor([8]), _QP), r"codes must lie in \[-7, 7\]", id="codes-out-of-range"
        ),
        pytest.param(
            lambda: dequantize(torch.tensor([1.0]), _QP), r"codes must be an integer tensor", id="codes-float"
        ),
        pytest.param(
            lambda: dequantize(torch.tensor([1]), QParams(torch.tensor(0.0), torch.tensor(0), 4, True, None, None)),
            r"qp\.scale must be finite and > 0",
            id="zero-scale",
        ),
        pytest.param(
            lambda: codebook_quantize(_X, NF4_CODE, 0), r"block_size must be a positive int", id="block-size-zero"
        ),
        pytest.param(lambda: codebook_quantize(_X, torch.tensor([[0.0]]), 4), r"code must be a 1-D", id="code-2d"),
        pytest.param(
            lambda: codebook_dequantize(torch.zeros(5, dtype=torch.int32), torch.ones(2), NF4_CODE, 4, (2, 3)),
            r"idx has 5 elements but shape \(2, 3\)",
            id="idx-shape",
        ),
        pytest.param(
            lambda: codebook_dequantize(torch.full((4,), 16), torch.ones(1), NF4_CODE, 4, (4,)),
            r"idx values must lie in \[0, 15\]",
            id="idx-range",
        ),
        pytest.param(
            lambda: codebook_dequantize(torch.zeros(8, dtype=torch.int32), torch.ones(3), NF4_CODE, 4, (8,)),
            r"absmax must hold 2 values",
            id="absmax-count",
        ),
    ],
)
def test_invalid_arguments_are_named(call, match):
    with pytest.raises(PrimitiveError, match=match) as info:
        call()
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------------------------------------
# codebook properties

NF4_VALUES = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
]  # fmt: skip


def test_code_books_are_pinned():
    assert torch.equal(NF4_CODE, torch.tensor(NF4_VALUES, dtype=torch.float32))
    assert NF4_CODE.dtype == FP4_CODE.dtype == torch.float32
    # FP4, 3 magnitude bits (e1 e0 m): 0 / subnormal 0.0625 for e=0, else 2**(4-e) * (1 + m/2); / 12
    mags = [0.0, 0.0625] + [2.0 ** (4 - e) * (1 + m / 2) for e in (1, 2, 3) for m in (0, 1)]
    expected = torch.tensor(mags + [-v for v in mags], dtype=torch.float32) / 12
    assert torch.equal(FP4_CODE, expected)
    assert torch.equal(torch.signbit(FP4_CODE[8:]), torch.ones(8, dtype=torch.bool))


def _block_view(t: torch.Tensor, block_size: int) -> torch.Tensor:
    flat = t.reshape(-1)
    pad = (-flat.numel()) % block_size
    return torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, block_size)


@given(tensors(min_ndim=0, max_ndim=3, max_side=6), st.sampled_from(("nf4", "fp4")), st.integers(1, 70))
def test_codebook_round_trip_is_nearest_code_times_absmax(x, name, block_size):
    code = NF4_CODE if name == "nf4" else FP4_CODE
    idx, absmax = codebook_quantize(x, code, block_size)
    assert idx.shape == x.shape and idx.dtype == torch.int32
    # absmax is the exact per-block max |x|
    assert torch.equal(absmax, _block_view(x.float().abs(), block_size).amax(dim=1))
    # dequantized values are code[idx] * absmax of the element's block, cast to x's dtype
    out = codebook_dequantize(idx, absmax, code, block_size, x.shape, x.dtype)
    assert out.shape == x.shape and out.dtype == x.dtype
    per_elem = absmax.repeat_interleave(block_size)[: x.numel()]
    expected = (code[idx.reshape(-1).long()] * per_elem).reshape(x.shape).to(x.dtype)
    assert torch.equal(out, expected)
    # the chosen code is a nearest one to x / absmax (float64 distances)
    scaled = (x.reshape(-1).float() / per_elem.clamp(min=SCALE_FLOOR)).double()
    dist = (scaled.unsqueeze(-1) - code.double()).abs()
    chosen = dist.gather(1, idx.reshape(-1, 1).long()).squeeze(1)
    assert (chosen <= dist.min(dim=1).values).all()


@pytest.mark.parametrize("code", [NF4_CODE, FP4_CODE], ids=["nf4", "fp4"])
def test_codebook_constants_zeros_and_ties(code):
    for value in (0.0, 3.5, -1e-20, 6e4):
        x = torch.full((5, 7), value)
        idx, absmax = codebook_quantize(x, code, 16)
        assert torch.equal(codebook_dequantize(idx, absmax, code, 16, x.shape), x)
    # an exact midpoint goes to the smaller code value; 0.0 / -0.0 duplicates go to the lower index
    toy = torch.tensor([1.0, 0.5, 0.0, -0.0])
    idx, _ = codebook_quantize(torch.tensor([0.25, 0.75, 1.0, 0.0, -0.25]), toy, 5)
    assert idx.tolist() == [2, 1, 0, 2, 2]
