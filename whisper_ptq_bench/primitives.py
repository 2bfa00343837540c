"""Reference quantization primitives: the suite's definition of what a quantizer should compute.

Affine (integer) quantization
    ``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` and ``x_hat = (q - zero_point) * scale``,
    with ``round`` = round half to even (``torch.round``), per tensor, per channel along one axis, or
    per group of ``group_size`` consecutive elements along the last dimension.

Codebook (nf4 / fp4) quantization
    ``x`` is cut into blocks of ``block_size`` consecutive elements (row-major order, the last block may
    be shorter); each block is divided by its absmax and every element is replaced by the index of the
    nearest code value; ``x_hat = code[idx] * absmax``.

Everything is computed in float64 from the input values, so the only rounding left is the final cast to
the input dtype; scales are stored as float32.  Invalid input raises :class:`PrimitiveError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from whisper_ptq_bench.errors import PrimitiveError

__all__ = [
    "FP4_CODE",
    "GRANULARITIES",
    "MAX_BITS",
    "MIN_BITS",
    "NF4_CODE",
    "SCALE_FLOOR",
    "QParams",
    "codebook_dequantize",
    "codebook_quantize",
    "compute_qparams",
    "dequantize",
    "expand_qparams",
    "fake_quantize",
    "qrange",
    "quantize",
]

MIN_BITS = 2
MAX_BITS = 8
GRANULARITIES = ("per-tensor", "per-channel", "per-group")

# Smallest scale ever produced: the smallest normal float32 (2**-126).  All-zero and constant-zero
# slices get this scale, so a scale is never 0 and x / scale is always finite.
SCALE_FLOOR = 2.0**-126

CODE_DTYPE = torch.int32
SCALE_DTYPE = torch.float32
_CHUNK = 1 << 16

# Code books exactly as bitsandbytes defines them (bitsandbytes/functional.py, get_4bit_type("nf4") and
# get_4bit_type("fp4"); NF4 from the QLoRA paper, arXiv:2305.14314).  Index i is the 4-bit pattern i.
# FP4 keeps bitsandbytes' bit-pattern order (1 sign, 2 exponent, 1 mantissa bit), normalised by 12.
NF4_CODE = torch.tensor(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ],
    dtype=torch.float32,
)
FP4_CODE = (
    torch.tensor(
        [0.0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0],
        dtype=torch.float32,
    )
    / 12.0
)


@dataclass(frozen=True)
class QParams:
    """Affine quantization parameters.

    ``scale`` (float32) and ``zero_point`` (int32) have the same shape:

    * per-tensor: ``()``; ``axis`` and ``group_size`` are ``None``;
    * per-channel: ``x.shape`` with every dim but ``axis`` set to 1 (broadcastable to ``x``);
    * per-group: ``(*x.shape[:-1], x.shape[-1] // group_size, 1)``, broadcastable to ``x`` viewed as
      ``(*x.shape[:-1], n_groups, group_size)``; ``axis`` is ``-1`` (groups run along the last dim).

    ``dtype`` is the floating dtype :func:`dequantize` returns by default (the dtype of the input).
    """

    scale: Tensor
    zero_point: Tensor
    bits: int
    symmetric: bool
    axis: int | None
    group_size: int | None
    dtype: torch.dtype = torch.float32

    @property
    def granularity(self) -> str:
        if self.group_size is not None:
            return "per-group"
        if self.axis is not None:
            return "per-channel"
        return "per-tensor"

    @property
    def qmin(self) -> int:
        return qrange(self.bits, self.symmetric)[0]

    @property
    def qmax(self) -> int:
        return qrange(self.bits, self.symmetric)[1]


# --------------------------------------------------------------------------------------------------
# validation helpers


def _check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise PrimitiveError(f"bits must be an int in {MIN_BITS}..{MAX_BITS}, got {bits!r}")
    if not MIN_BITS <= bits <= MAX_BITS:
        raise PrimitiveError(f"bits must be in {MIN_BITS}..{MAX_BITS}, got {bits}")
    return bits


def _check_float_tensor(x, name: str = "x") -> Tensor:
    if not isinstance(x, Tensor):
        raise PrimitiveError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise PrimitiveError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.numel() == 0:
        raise PrimitiveError(f"{name} is empty (shape {tuple(x.shape)}); nothing to quantize")
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise PrimitiveError(
            f"{name} contains non-finite values ({n_nan} NaN, {n_inf} inf) in shape {tuple(x.shape)}; "
            "quantization needs finite input"
        )
    return x


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PrimitiveError(f"{name} must be a positive int, got {value!r}")
    return value


def _normalise_axis(axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise PrimitiveError(f"axis must be an int, got {axis!r}")
    if ndim == 0 or not -ndim <= axis < ndim:
        raise PrimitiveError(f"axis={axis} is out of range for a tensor with {ndim} dims")
    return axis % ndim


def _check_group_size(group_size, shape: Sequence[int]) -> int:
    if group_size is None:
        raise PrimitiveError("group_size is required for granularity='per-group'")
    _check_positive_int(group_size, "group_size")
    if len(shape) == 0:
        raise PrimitiveError("per-group quantization needs a tensor with at least one dim, got a scalar")
    if shape[-1] % group_size != 0:
        raise PrimitiveError(
            f"group_size={group_size} does not divide the last dim ({shape[-1]}) of shape {tuple(shape)}"
        )
    return group_size


def _grouped(t: Tensor, group_size: int) -> Tensor:
    return t.reshape(*t.shape[:-1], t.shape[-1] // group_size, group_size)


# --------------------------------------------------------------------------------------------------
# affine quantization


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """Integer code range.

    Symmetric uses the restricted range ``-(2**(bits-1) - 1) .. 2**(bits-1) - 1`` so that the grid is
    symmetric about 0 (``q(-x) == -q(x)``), as absmax/127 int8 schemes do; asymmetric uses ``0 .. 2**bits - 1``.
    """
    _check_bits(bits)
    if symmetric:
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def compute_qparams(
    x: Tensor,
    bits: int,
    symmetric: bool = True,
    granularity: str = "per-tensor",
    axis: int = 0,
    group_size: int | None = None,
) -> QParams:
    """Min/max (asymmetric) or absmax (symmetric) quantization parameters for ``x``.

    symmetric:  ``scale = max(absmax / qmax, SCALE_FLOOR)``, ``zero_point = 0``.
    asymmetric: the range is widened to contain 0 (``rmin = min(x.min(), 0)``, ``rmax = max(x.max(), 0)``),
    ``scale = max((rmax - rmin) / (qmax - qmin), SCALE_FLOOR)`` and
    ``zero_point = clamp(qmin - round(rmin / scale), qmin, qmax)``, an integer, so 0 is represented exactly.
    """
    _check_float_tensor(x)
    bits = _check_bits(bits)
    if granularity not in GRANULARITIES:
        raise PrimitiveError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    qmin, qmax = qrange(bits, symmetric)
    x64 = x.detach().to(torch.float64)

    if granularity == "per-tensor":
        q_axis, q_group = None, None
        rmin, rmax = x64.min(), x64.max()
    elif granularity == "per-channel":
        q_axis, q_group = _normalise_axis(axis, x.ndim), None
        dims = [d for d in range(x.ndim) if d != q_axis]
        if dims:
            rmin, rmax = x64.amin(dim=dims, keepdim=True), x64.amax(dim=dims, keepdim=True)
        else:
            rmin, rmax = x64, x64
    else:
        q_group = _check_group_size(group_size, x.shape)
        q_axis = -1
        g = _grouped(x64, q_group)
        rmin, rmax = g.amin(dim=-1, keepdim=True), g.amax(dim=-1, keepdim=True)

    if symmetric:
        absmax = torch.maximum(rmin.abs(), rmax.abs())
        scale = (absmax / qmax).clamp(min=SCALE_FLOOR).to(SCALE_DTYPE)
        zero_point = torch.zeros_like(scale, dtype=CODE_DTYPE)
    else:
        rmin = rmin.clamp(max=0.0)
        rmax = rmax.clamp(min=0.0)
        scale = ((rmax - rmin) / (qmax - qmin)).clamp(min=SCALE_FLOOR).to(SCALE_DTYPE)
        zp = qmin - torch.round(rmin / scale.to(torch.float64))
        zero_point = zp.clamp(qmin, qmax).to(CODE_DTYPE)
    return QParams(scale, zero_point, bits, bool(symmetric), q_axis, q_group, x.dtype)


def _check_qparams(qp) -> QParams:
    if not isinstance(qp, QParams):
        raise PrimitiveError(f"qp must be a QParams, got {type(qp).__name__}")
    _check_bits(qp.bits)
    if qp.scale.shape != qp.zero_point.shape:
        raise PrimitiveError(
            f"qp.scale shape {tuple(qp.scale.shape)} differs from qp.zero_point shape {tuple(qp.zero_point.shape)}"
        )
    if not bool(torch.isfinite(qp.scale).all()) or not bool((qp.scale > 0).all()):
        raise PrimitiveError("qp.scale must be finite and > 0 everywhere")
    return qp


def _view_for(t: Tensor, qp: QParams, name: str) -> Tensor:
    """``t`` reshaped (for groups) and checked to broadcast against ``qp.scale`` without growing."""
    if qp.group_size is not None:
        _check_group_size(qp.group_size, t.shape)
        t = _grouped(t, qp.group_size)
    try:
        shape = torch.broadcast_shapes(t.shape, qp.scale.shape)
    except RuntimeError as exc:
        raise PrimitiveError(
            f"{name} of shape {tuple(t.shape)} does not match qparams with scale shape {tuple(qp.scale.shape)}"
        ) from exc
    if shape != t.shape:
        raise PrimitiveError(
            f"{name} of shape {tuple(t.shape)} is smaller than qparams with scale shape {tuple(qp.scale.shape)}"
        )
    return t


def quantize(x: Tensor, qp: QParams) -> Tensor:
    """Integer codes (int32, same shape as ``x``) in ``[qp.qmin, qp.qmax]``; out-of-range values saturate."""
    _check_float_tensor(x)
    _check_qparams(qp)
    qmin, qmax = qrange(qp.bits, qp.symmetric)
    xv = _view_for(x.detach().to(torch.float64), qp, "x")
    q = torch.round(xv / qp.scale.to(torch.float64)) + qp.zero_point.to(torch.float64)
    return q.clamp(qmin, qmax).to(CODE_DTYPE).reshape(x.shape)


def dequantize(codes: Tensor, qp: QParams, dtype: torch.dtype | None = None) -> Tensor:
    """``(codes - zero_point) * scale`` in float64, saturated to the finite range of ``dtype``
    (default ``qp.dtype``) and cast to it.  Saturation only moves a value towards the input it came from."""
    _check_qparams(qp)
    if not isinstance(codes, Tensor) or codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise PrimitiveError(f"codes must be an integer tensor, got {getattr(codes, 'dtype', type(codes))}")
    if codes.numel() == 0:
        raise PrimitiveError(f"codes is empty (shape {tuple(codes.shape)})")
    qmin, qmax = qrange(qp.bits, qp.symmetric)
    c = codes.to(torch.int64)
    if int(c.min()) < qmin or int(c.max()) > qmax:
        raise PrimitiveError(
            f"codes must lie in [{qmin}, {qmax}] for bits={qp.bits}, symmetric={qp.symmetric}; "
            f"got values in [{int(c.min())}, {int(c.max())}]"
        )
    dtype = qp.dtype if dtype is None else dtype
    if not dtype.is_floating_point:
        raise PrimitiveError(f"dtype must be a floating dtype, got {dtype}")
    cv = _view_for(c.to(torch.float64), qp, "codes")
    x = (cv - qp.zero_point.to(torch.float64)) * qp.scale.to(torch.float64)
    info = torch.finfo(dtype)
    return x.clamp(info.min, info.max).to(dtype).reshape(codes.shape)


def fake_quantize(
    x: Tensor,
    bits: int = 8,
    symmetric: bool = True,
    granularity: str = "per-tensor",
    axis: int = 0,
    group_size: int | None = None,
    *,
    qparams: QParams | None = None,
) -> Tensor:
    """``dequantize(quantize(x, qp), qp)`` in ``x``'s dtype, with ``qp`` computed from ``x`` unless given."""
    if qparams is None:
        qparams = compute_qparams(x, bits, symmetric, granularity, axis, group_size)
    return dequantize(quantize(x, qparams), qparams, dtype=x.dtype)


def expand_qparams(qp: QParams, shape: Sequence[int]) -> tuple[Tensor, Tensor]:
    """``(scale, zero_point)`` broadcast to one value per element of a tensor of ``shape``."""
    _check_qparams(qp)
    probe = torch.empty(tuple(shape), dtype=torch.float32)
    view = _view_for(probe, qp, "shape")
    scale = qp.scale.expand(view.shape).reshape(tuple(shape))
    zero_point = qp.zero_point.expand(view.shape).reshape(tuple(shape))
    return scale, zero_point


# --------------------------------------------------------------------------------------------------
# codebook quantization


def _check_code(code) -> Tensor:
    if not isinstance(code, Tensor) or not code.is_floating_point() or code.ndim != 1:
        raise PrimitiveError("code must be a 1-D floating-point tensor")
    if not 1 <= code.numel() <= 256:
        raise PrimitiveError(f"code must have 1..256 entries, got {code.numel()}")
    if not bool(torch.isfinite(code).all()):
        raise PrimitiveError("code contains non-finite values")
    return code


def _blocks(flat: Tensor, block_size: int) -> Tensor:
    pad = (-flat.numel()) % block_size
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return flat.reshape(-1, block_size)


def codebook_quantize(x: Tensor, code: Tensor, block_size: int) -> tuple[Tensor, Tensor]:
    """Indices (int32, shape of ``x``) of the nearest ``code`` value (by float64 distance) to ``x / absmax`` per block, and the
    per-block absmax (float32, ``ceil(numel / block_size)`` values).  Blocks are consecutive elements in
    row-major order; the last block may be shorter.  A tie goes to the smaller code value
    (as bitsandbytes' bucketize does), equal code values to the lower index.  Arithmetic is float32,
    as in bitsandbytes; an all-zero block keeps absmax 0 and is divided by ``SCALE_FLOOR`` instead."""
    _check_float_tensor(x)
    _check_code(code)
    block_size = _check_positive_int(block_size, "block_size")
    n = x.numel()
    blocks = _blocks(x.detach().reshape(-1).to(torch.float32), block_size)
    absmax = blocks.abs().amax(dim=1, keepdim=True)
    scaled = (blocks / absmax.clamp(min=SCALE_FLOOR)).clamp(-1.0, 1.0).reshape(-1)
    # Search the code sorted by value (stable), so that argmin's first-minimum rule sends a tie to the
    # smaller code value, and equal values (0.0 / -0.0 in FP4) to the lower index.
    sorted_code, order = torch.sort(code.to(torch.float32).to(torch.float64), stable=True)
    idx = torch.empty(scaled.numel(), dtype=torch.int64)
    for start in range(0, scaled.numel(), _CHUNK):  # bounds the (chunk, len(code)) distance matrix
        part = scaled[start : start + _CHUNK].to(torch.float64)
        idx[start : start + _CHUNK] = order[(part.unsqueeze(-1) - sorted_code).abs().argmin(dim=-1)]
    return idx[:n].to(CODE_DTYPE).reshape(x.shape), absmax.reshape(-1)


def codebook_dequantize(
    idx: Tensor,
    absmax: Tensor,
    code: Tensor,
    block_size: int,
    shape: Sequence[int],
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``code[idx] * absmax`` per block (float32), reshaped to ``shape`` and cast to ``dtype``."""
    _check_code(code)
    block_size = _check_positive_int(block_size, "block_size")
    if not isinstance(idx, Tensor) or idx.is_floating_point() or idx.dtype == torch.bool:
        raise PrimitiveError("idx must be an integer tensor")
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    if idx.numel() != n or n == 0:
        raise PrimitiveError(f"idx has {idx.numel()} elements but shape {shape} needs {n} (and n > 0)")
    flat = idx.reshape(-1).to(torch.int64)
    if int(flat.min()) < 0 or int(flat.max()) >= code.numel():
        raise PrimitiveError(f"idx values must lie in [0, {code.numel() - 1}]")
    n_blocks = -(-n // block_size)
    if not isinstance(absmax, Tensor) or absmax.numel() != n_blocks:
        raise PrimitiveError(
            f"absmax must hold {n_blocks} values (one per block of {block_size}), got "
            f"{getattr(absmax, 'numel', lambda: '?')()}"
        )
    if not bool(torch.isfinite(absmax).all()) or bool((absmax < 0).any()):
        raise PrimitiveError("absmax must be finite and >= 0")
    values = _blocks(code.to(torch.float32)[flat], block_size) * absmax.reshape(-1, 1).to(torch.float32)
    return values.reshape(-1)[:n].reshape(shape).to(dtype)
