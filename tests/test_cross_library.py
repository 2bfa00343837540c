"""Each library's own quantization primitives against the reference (whisper_ptq_bench.primitives).

Where a library agrees with the reference the test says so exactly; where it deviates by design the test
pins how (formula, size of the difference, where it happens), so a new library version that changes its
arithmetic fails here first.  Every example is a small fixed tensor so the file runs in seconds.
"""

from __future__ import annotations

import pytest
import torch

from whisper_ptq_bench.primitives import (
    FP4_CODE,
    NF4_CODE,
    QParams,
    codebook_dequantize,
    codebook_quantize,
    compute_qparams,
    dequantize,
    expand_qparams,
    quantize,
)


def weight(rows: int = 32, cols: int = 256, seed: int = 0) -> torch.Tensor:
    """Gaussian weight with two outliers; every 32-wide group holds both signs."""
    x = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    x[3, 17], x[20, 200] = 8.0, -6.5
    return x


X = weight()
GROUP = 32


def steps_off(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (a.double() - b.double()).abs() / scale.double()


def distance_to_half_integer(t: torch.Tensor) -> torch.Tensor:
    return (t - t.floor() - 0.5).abs()


# ------------------------------------------------------------------------------------------------
# torch.ao quantized tensors


def _torch_quantized():
    if not hasattr(torch, "quantize_per_tensor") or not hasattr(torch, "quantize_per_channel"):
        pytest.skip("this torch build has no torch.quantize_per_tensor / quantize_per_channel")


@pytest.mark.filterwarnings("ignore::UserWarning")
class TestTorchQuantized:
    def test_quint8_per_tensor_matches_reference(self):
        _torch_quantized()
        qp = compute_qparams(X, 8, symmetric=False)
        tq = torch.quantize_per_tensor(X, float(qp.scale), int(qp.zero_point), torch.quint8)
        assert torch.equal(tq.int_repr().to(torch.int32), quantize(X, qp))
        assert torch.equal(tq.dequantize(), dequantize(quantize(X, qp), qp))

    def test_qint8_per_channel_matches_reference(self):
        _torch_quantized()
        qp = compute_qparams(X, 8, symmetric=True, granularity="per-channel", axis=0)
        tq = torch.quantize_per_channel(
            X, qp.scale.reshape(-1).double(), qp.zero_point.reshape(-1).long(), 0, torch.qint8
        )
        assert torch.equal(tq.int_repr().to(torch.int32), quantize(X, qp))
        assert torch.equal(tq.dequantize(), dequantize(quantize(X, qp), qp))

    def test_exact_ties_round_half_to_even(self):
        _torch_quantized()
        x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5]) * 0.25
        qp = QParams(torch.tensor(0.25), torch.tensor(10, dtype=torch.int32), 8, False, None, None)
        tq = torch.quantize_per_tensor(x, 0.25, 10, torch.quint8).int_repr().to(torch.int32)
        assert tq.tolist() == quantize(x, qp).tolist() == [10, 12, 12, 10, 8]

    def test_deviation_odd_zero_point_added_before_rounding_at_exact_ties(self):
        """torch 2.13's vectorized quantize rounds x/s + zp to nearest even; the reference (and PyTorch's stated
        numerics, pytorch#37188) rounds x/s, then adds zp. With an even zp the two agree; with an odd one every
        exact tie lands one code apart. torch 2.14.1 adds zp after rounding: this pin fails there, by design."""
        _torch_quantized()
        x = ((torch.arange(64) % 40 - 20) + 0.5) * 0.25  # x/s is an exact tie for every element
        zp = 27  # odd, and large enough that no code saturates
        qp = QParams(torch.tensor(0.25), torch.tensor(zp, dtype=torch.int32), 8, False, None, None)
        ref = quantize(x, qp)
        assert torch.equal(ref, (torch.round(x / 0.25) + zp).to(torch.int32))  # the reference's rule, unsaturated
        got = torch.quantize_per_tensor(x, 0.25, zp, torch.quint8).int_repr().to(torch.int32)
        even = torch.quantize_per_tensor(x, 0.25, zp - 1, torch.quint8).int_repr().to(torch.int32)
        assert torch.equal(even, ref - 1), "an even zero point: both rules agree"
        assert not torch.equal(got, ref), (
            f"torch {torch.__version__} now adds the zero point after rounding at exact ties, as the reference does: "
            "every torch-ao int8 configuration's activations (quint8, zero point) can move; update this pin"
        )
        assert torch.equal(got, torch.round(x / 0.25 + zp).to(torch.int32))  # one code apart on every tie

    def test_deviation_reciprocal_multiply_near_ties(self):
        """torch computes round(zp + x * fl32(1/s)) in float32 (fused), the reference round(x / s) + zp in
        float64: values within float32 rounding of a half-integer can land one code apart."""
        _torch_quantized()
        qp = compute_qparams(X, 8, symmetric=False)
        s, zp = float(qp.scale), int(qp.zero_point)
        x = ((torch.arange(-100, 100) + 0.5) * s).float()  # float32 values next to every tie
        ref = quantize(x, qp)
        got = torch.quantize_per_tensor(x, s, zp, torch.quint8).int_repr().to(torch.int32)
        diff = got - ref
        u = x.double() / qp.scale.double()
        near = distance_to_half_integer(u) <= (2 * u.abs() + abs(zp) + 1) * 2.0**-23
        assert int((diff != 0).sum()) > 0, "torch now agrees on every near-tie: update the pinned deviation"
        assert diff.abs().max() <= 1 and bool(near[diff != 0].all())

    def test_deviation_qint8_uses_full_range(self):
        """qint8 clamps at -128; the reference's restricted symmetric range stops at -127."""
        _torch_quantized()
        qp = compute_qparams(X, 8, symmetric=True)
        got = torch.quantize_per_tensor(2 * X, float(qp.scale), 0, torch.qint8).int_repr().to(torch.int32)
        ref = quantize(2 * X, qp)
        assert int(got.min()) == -128 and int(ref.min()) == -127
        differs = got != ref
        assert bool((2 * X / qp.scale)[differs].le(-127.5).all()) and bool(got[differs].eq(-128).all())


# ------------------------------------------------------------------------------------------------
# optimum-quanto


@pytest.fixture(scope="module")
def quanto():
    return pytest.importorskip("optimum.quanto", reason="optimum-quanto is not installed")


def _quanto_codes(qtensor) -> torch.Tensor:
    data = qtensor._data
    return (data.unpack() if hasattr(data, "unpack") else data).to(torch.int32)


class TestQuanto:
    def test_qint8_absmax_matches_reference(self, quanto):
        scale = quanto.AbsmaxOptimizer()(X, quanto.qint8, axis=0)
        qp = compute_qparams(X, 8, symmetric=True, granularity="per-channel", axis=0)
        assert scale.dtype == torch.float32 and torch.equal(scale, qp.scale)
        qt = quanto.quantize_weight(X, quanto.qint8, axis=0, scale=scale, optimized=False)
        assert torch.equal(_quanto_codes(qt), quantize(X, qp))
        assert torch.equal(qt.dequantize(), dequantize(quantize(X, qp), qp))

    def test_deviation_qint8_full_range_clamp(self, quanto):
        """quanto clamps int8 codes to [-128, 127]; the reference stops at -127."""
        scale = quanto.AbsmaxOptimizer()(X, quanto.qint8, axis=0)
        qt = quanto.quantize_weight(2 * X, quanto.qint8, axis=0, scale=scale, optimized=False)
        assert int(_quanto_codes(qt).min()) == -128

    def test_deviation_qint8_half_precision_arithmetic(self, quanto):
        """For float16 weights quanto keeps the scale in float16 and divides in float16:
        codes == round(fl16(x / s16)); the reference (float32 scale, float64 division) is at most 1 off."""
        x = X.half()
        scale = quanto.AbsmaxOptimizer()(x, quanto.qint8, axis=0)
        assert scale.dtype == torch.float16
        qt = quanto.quantize_weight(x, quanto.qint8, axis=0, scale=scale, optimized=False)
        codes = _quanto_codes(qt)
        assert torch.equal(codes, torch.round(x / scale).clamp(-128, 127).to(torch.int32))
        ref = quantize(x, compute_qparams(x, 8, symmetric=True, granularity="per-channel", axis=0))
        assert int((codes - ref).abs().max()) == 1

    @pytest.mark.parametrize("bits", [2, 4])
    def test_deviation_grouped_float_shift(self, quanto, bits):
        """MaxOptimizer: scale = (max - min) / (2**bits - 1) over [min, max] (not widened to 0) and a float
        shift = -min, so codes = round((x - min) / s): the zero point is not rounded and 0 is not exact.
        Codes are within 1 of the reference, both are within half a step of x."""
        qtype = {2: quanto.qint2, 4: quanto.qint4}[bits]
        scale, shift = quanto.MaxOptimizer()(X, qtype, axis=0, group_size=GROUP, zeropoint=False)
        g = X.reshape(-1, GROUP)
        assert shift.dtype == torch.float32 and torch.equal(shift, -g.amin(1, keepdim=True))
        qt = quanto.quantize_weight(X, qtype, axis=0, scale=scale, shift=shift, group_size=GROUP, optimized=False)
        codes = _quanto_codes(qt)
        assert torch.equal(codes, torch.round((g + shift) / scale).clamp(0, 2**bits - 1).to(torch.int32))
        qp = compute_qparams(X, bits, symmetric=False, granularity="per-group", group_size=GROUP)
        assert torch.allclose(scale, qp.scale.reshape(-1, 1), rtol=2**-21, atol=0)
        diff = (codes - quantize(X, qp).reshape(-1, GROUP)).abs()
        assert int(diff.max()) == 1 and 0.1 < float(diff.float().mean()) < 0.5
        assert float(steps_off(qt.dequantize(), X, expand_qparams(qp, X.shape)[0]).max()) <= 0.5 + 1e-5
        zero_back = torch.round(shift / scale).clamp(0, 2**bits - 1) * scale - shift  # how 0.0 comes back
        assert bool((zero_back != 0).any())

    def test_grouped_integer_zeropoint_matches_reference(self, quanto):
        """zeropoint=True rounds the shift to an integer code: on mixed-sign groups the codes equal the
        reference's asymmetric per-group codes exactly."""
        scale, shift = quanto.MaxOptimizer()(X, quanto.qint4, axis=0, group_size=GROUP, zeropoint=True)
        qp = compute_qparams(X, 4, symmetric=False, granularity="per-group", group_size=GROUP)
        assert shift.dtype == torch.uint8 and torch.equal(shift.to(torch.int32), qp.zero_point.reshape(-1, 1))
        qt = quanto.quantize_weight(
            X, quanto.qint4, axis=0, scale=scale, shift=shift, group_size=GROUP, optimized=False
        )
        assert torch.equal(_quanto_codes(qt), quantize(X, qp).reshape(-1, GROUP))
        assert torch.allclose(qt.dequantize(), dequantize(quantize(X, qp), qp), rtol=0, atol=1e-6)

    def test_deviation_integer_zeropoint_saturates_all_positive_groups(self, quanto):
        """With zeropoint=True an all-positive group needs a negative zero point; quanto clamps it to 0, so
        values above 15 * s saturate: errors of several steps (the reference widens the range to 0)."""
        x = X.abs() + 0.5
        scale, shift = quanto.MaxOptimizer()(x, quanto.qint4, axis=0, group_size=GROUP, zeropoint=True)
        assert int(shift.max()) == 0
        qt = quanto.quantize_weight(
            x, quanto.qint4, axis=0, scale=scale, shift=shift, group_size=GROUP, optimized=False
        )
        err_steps = ((qt.dequantize() - x).reshape(-1, GROUP).abs() / scale).max()
        assert float(err_steps) > 5
        qp = compute_qparams(x, 4, symmetric=False, granularity="per-group", group_size=GROUP)
        assert float(steps_off(dequantize(quantize(x, qp), qp), x, expand_qparams(qp, x.shape)[0]).max()) <= 0.5 + 1e-5

    def test_deviation_constant_group_has_zero_scale(self, quanto):
        """quanto has no scale floor: a constant group gets scale 0 (the reference: SCALE_FLOOR or c/qmax);
        the float shift still restores the constant."""
        x = torch.full((4, GROUP), 0.3)
        scale, shift = quanto.MaxOptimizer()(x, quanto.qint4, axis=0, group_size=GROUP)
        assert bool((scale == 0).all())
        qt = quanto.quantize_weight(
            x, quanto.qint4, axis=0, scale=scale, shift=shift, group_size=GROUP, optimized=False
        )
        assert torch.equal(qt.dequantize(), x)


# ------------------------------------------------------------------------------------------------
# HQQ (optimisation off)


@pytest.fixture(scope="module")
def hqq_quantizer():
    return pytest.importorskip("hqq.core.quantize", reason="hqq is not installed").Quantizer


def _hqq(quantizer, x, bits, round_zero=False):
    codes, meta = quantizer.quantize(
        x,
        nbits=bits,
        channel_wise=True,
        group_size=GROUP,
        optimize=False,
        round_zero=round_zero,
        axis=1,
        bitpack=False,
        compute_dtype=torch.float32,
        device="cpu",
    )
    meta["compute_dtype"] = torch.float32
    return codes, meta, quantizer.dequantize(codes, meta)


class TestHQQ:
    @pytest.mark.parametrize("bits", [2, 3, 4, 8])
    def test_deviation_unrounded_zero(self, hqq_quantizer, bits):
        """HQQ: inv = (2**b - 1) / (max - min) over [min, max], zero = -min * inv (a float), codes =
        round(x * inv + zero); scale = 1 / inv.  Codes within 1 of the reference, error within half a step."""
        codes, meta, deq = _hqq(hqq_quantizer, X, bits)
        g = X.reshape(-1, GROUP)
        inv = (2**bits - 1) / (g.amax(1, keepdim=True) - g.amin(1, keepdim=True))
        assert torch.equal(meta["zero"], -g.amin(1, keepdim=True) * inv)
        assert torch.equal(codes, (g * inv + meta["zero"]).round().clamp(0, 2**bits - 1))
        assert bool((meta["zero"] != meta["zero"].round()).any())
        qp = compute_qparams(X, bits, symmetric=False, granularity="per-group", group_size=GROUP)
        assert torch.allclose(meta["scale"], qp.scale.reshape(-1, 1), rtol=2**-21, atol=0)
        diff = (codes.to(torch.int32) - quantize(X, qp).reshape(-1, GROUP)).abs()
        assert int(diff.max()) == 1 and 0.1 < float(diff.float().mean()) < 0.5
        assert float(steps_off(deq, X, expand_qparams(qp, X.shape)[0]).max()) <= 0.5 + 1e-5

    @pytest.mark.parametrize("bits", [2, 3, 4, 8])
    def test_round_zero_matches_reference(self, hqq_quantizer, bits):
        """round_zero=True: integer zero point; codes equal the reference's on mixed-sign groups."""
        codes, meta, deq = _hqq(hqq_quantizer, X, bits, round_zero=True)
        qp = compute_qparams(X, bits, symmetric=False, granularity="per-group", group_size=GROUP)
        assert torch.equal(meta["zero"].to(torch.int32), qp.zero_point.reshape(-1, 1))
        assert torch.equal(codes.to(torch.int32), quantize(X, qp).reshape(-1, GROUP))
        assert torch.allclose(deq, dequantize(quantize(X, qp), qp), rtol=0, atol=1e-6)

    def test_deviation_small_range_clamps(self, hqq_quantizer):
        """A range <= 1e-4 gets scale 1 (constant groups stay exact through the float zero); otherwise
        inv is capped at 2e4, so a 4-bit group of range 5e-4 uses step 5e-5 and codes 0..10 only."""
        x = torch.stack([torch.full((GROUP,), 0.3), torch.linspace(0, 5e-4, GROUP), torch.linspace(0, 2e-3, GROUP)])
        codes, meta, deq = _hqq(hqq_quantizer, x, 4)
        assert torch.allclose(meta["scale"].flatten(), torch.tensor([1.0, 5e-5, 2e-3 / 15]), rtol=1e-6, atol=0)
        assert codes.amax(1).tolist() == [0.0, 10.0, 15.0]
        assert torch.equal(deq[0], x[0])
        ref_step = 5e-4 / 15
        assert 0.5 * ref_step < float((deq[1] - x[1]).abs().max()) <= 0.5 * 5e-5 + 1e-9


# ------------------------------------------------------------------------------------------------
# bitsandbytes (CPU)


@pytest.fixture(scope="module")
def bnbf():
    return pytest.importorskip("bitsandbytes.functional", reason="bitsandbytes is not installed")


def _nibbles(packed: torch.Tensor, n: int) -> torch.Tensor:
    p = packed.reshape(-1)
    return torch.stack([p >> 4, p & 0xF], dim=1).reshape(-1)[:n].to(torch.int32)


BLOCK_4BIT = 64


class TestBitsandbytes4bit:
    @pytest.mark.parametrize("quant_type, code", [("nf4", NF4_CODE), ("fp4", FP4_CODE)])
    def test_code_books_equal(self, bnbf, quant_type, code):
        assert torch.equal(bnbf.get_4bit_type(quant_type, device="cpu"), code)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
    def test_nf4_matches_reference(self, bnbf, dtype):
        x = X.to(dtype)
        packed, state = bnbf.quantize_4bit(x, blocksize=BLOCK_4BIT, quant_type="nf4")
        idx, absmax = codebook_quantize(x, NF4_CODE, BLOCK_4BIT)
        assert torch.equal(state.absmax, absmax)
        assert torch.equal(_nibbles(packed, x.numel()), idx.reshape(-1))
        deq = bnbf.dequantize_4bit(packed, state)
        assert deq.dtype == dtype and torch.equal(
            deq, codebook_dequantize(idx, absmax, NF4_CODE, BLOCK_4BIT, x.shape, dtype)
        )

    @pytest.mark.parametrize("dtype, ties", [(torch.float32, 0), (torch.float16, 2), (torch.bfloat16, 4)])
    def test_deviation_fp4(self, bnbf, dtype, ties):
        """FP4 values agree except (a) zero is stored as nibble 8 (-0.0) where the reference picks 0 (same
        value) and (b) bnb scales by x * fl32(1 / absmax) and decides by float32-rounded midpoints: a scaled
        value landing exactly on one (fp16/bf16 data does) goes to the smaller code although the reference's
        x / absmax is nearer the larger one, by < 1e-7.  Counts pinned for this tensor."""
        x = X.to(dtype)
        packed, state = bnbf.quantize_4bit(x, blocksize=BLOCK_4BIT, quant_type="fp4")
        idx, absmax = codebook_quantize(x, FP4_CODE, BLOCK_4BIT)
        assert torch.equal(state.absmax, absmax)
        nib, ref = _nibbles(packed, x.numel()), idx.reshape(-1)
        zero_pairs = (nib != ref) & (FP4_CODE[nib.long()] == FP4_CODE[ref.long()])
        assert set(zip(nib[zero_pairs].tolist(), ref[zero_pairs].tolist(), strict=True)) == {(8, 0)}
        value_diff = FP4_CODE[nib.long()] != FP4_CODE[ref.long()]
        assert int(value_diff.sum()) == ties
        blocks = x.float().reshape(-1, BLOCK_4BIT)
        bnb_scaled = (blocks * (1.0 / absmax[:, None])).reshape(-1)[value_diff]  # bnb: x * fl32(1 / absmax)
        sorted_code = FP4_CODE.sort().values
        midpoints = (sorted_code[:-1] + sorted_code[1:]) / 2  # float32, as bnb computes them
        assert bool((bnb_scaled[:, None] == midpoints).any(dim=1).all())
        scaled = (blocks / absmax[:, None]).reshape(-1)[value_diff]  # the reference divides
        d_bnb = (scaled.double() - FP4_CODE[nib[value_diff].long()].double()).abs()
        d_ref = (scaled.double() - FP4_CODE[ref[value_diff].long()].double()).abs()
        assert bool(((d_bnb - d_ref) > 0).all() and ((d_bnb - d_ref) < 1e-7).all())
        deq = bnbf.dequantize_4bit(packed, state)
        assert torch.equal(deq, codebook_dequantize(nib, absmax, FP4_CODE, BLOCK_4BIT, x.shape, dtype))

    def test_partial_last_block_zero_block_and_1d_shape(self, bnbf):
        """A short last block and an all-zero block agree exactly.  Deviation: for a 1-D input the CPU
        dequantize_4bit kernel returns shape (1, n) instead of (n,)."""
        x = torch.randn(1000, generator=torch.Generator().manual_seed(1))
        x[:BLOCK_4BIT] = 0.0
        packed, state = bnbf.quantize_4bit(x, blocksize=BLOCK_4BIT, quant_type="nf4")
        idx, absmax = codebook_quantize(x, NF4_CODE, BLOCK_4BIT)
        assert absmax.numel() == 16 and float(absmax[0]) == 0.0 and torch.equal(state.absmax, absmax)
        deq = bnbf.dequantize_4bit(packed, state)
        assert tuple(deq.shape) == (1, 1000)
        assert torch.equal(deq.reshape(x.shape), codebook_dequantize(idx, absmax, NF4_CODE, BLOCK_4BIT, x.shape))


class TestBitsandbytes8bit:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
    def test_deviation_blockwise_dynamic_not_always_nearest(self, bnbf, dtype):
        """8-bit blockwise with the dynamic map: absmax and dequantisation (code[i] * absmax) agree exactly;
        bnb's index is the nearest code except within 5e-5 (of absmax) of a midpoint between two codes,
        where it may take the neighbour: at most 1 index off, < 0.5% of elements."""
        x = X.to(dtype)
        code = bnbf.create_dynamic_map().float()
        q, state = bnbf.quantize_blockwise(x, blocksize=256)
        idx, absmax = codebook_quantize(x, code, 256)
        assert torch.equal(state.absmax, absmax)
        got = q.to(torch.int32)
        assert torch.equal(
            bnbf.dequantize_blockwise(q, state), codebook_dequantize(got, absmax, code, 256, x.shape, dtype)
        )
        off = got != idx
        assert int((got - idx).abs().max()) <= 1 and float(off.float().mean()) < 0.005
        scaled = (x.float().reshape(-1, 256) / absmax[:, None]).reshape(x.shape)[off].double()
        lo = torch.minimum(got[off], idx[off]).long()
        midpoint = (code[lo].double() + code[lo + 1].double()) / 2
        assert bool(((scaled - midpoint).abs() < 5e-5).all())

    def test_deviation_blockwise_zero_block(self, bnbf):
        """An all-zero block: bnb normalises 0/0 and stores index 0 (code -0.993) with absmax 0; the
        reference stores the index of code 0.  Both dequantise to zeros."""
        x = torch.cat([torch.zeros(256), torch.randn(256, generator=torch.Generator().manual_seed(2))])
        code = bnbf.create_dynamic_map().float()
        q, state = bnbf.quantize_blockwise(x, blocksize=256)
        idx, absmax = codebook_quantize(x, code, 256)
        assert float(state.absmax[0]) == float(absmax[0]) == 0.0
        assert (q[:256] == 0).all() and (code[idx[:256].long()] == 0).all()
        assert (bnbf.dequantize_blockwise(q, state)[:256] == 0).all()
        assert (codebook_dequantize(idx, absmax, code, 256, x.shape)[:256] == 0).all()

    def test_int8_vectorwise_matches_per_channel_symmetric(self, bnbf):
        """LLM.int8 row-wise absmax: stats are absmax (not absmax/127); codes = round(x * 127 / absmax)
        equal the reference per-channel symmetric 8-bit codes; a zero row has stats 0 and dequantises to 0."""
        x = X.clone()
        x[5] = 0.0
        out, stats, _ = bnbf.int8_vectorwise_quant(x.clone())
        qp = compute_qparams(x, 8, symmetric=True, granularity="per-channel", axis=0)
        assert torch.equal(stats, x.abs().amax(dim=1))
        nonzero = stats > 0
        assert torch.equal(out.to(torch.int32)[nonzero], quantize(x, qp)[nonzero])
        deq = bnbf.int8_vectorwise_dequant(out, stats)
        assert (deq[5] == 0).all()
        assert torch.allclose(deq, dequantize(quantize(x, qp), qp), rtol=0, atol=1e-6)
