"""A catalogue of dependency regressions, injected into the real installed libraries in-process.

Each :class:`Regression` monkeypatches the library's own functions, classes, constants or op
namespaces, on exactly the code paths the backends of :mod:`whisper_ptq_bench.backends` call, so a
benchmark run inside ``with regression.patch():`` behaves as if a broken release of that library
were installed.  Every patch restores the exact previous objects on exit, also when the body raises.

    from whisper_ptq_bench.regressions import by_name
    with by_name("hqq-nan-smallest-range").patch():
        ...  # quantize and evaluate: the weight/output gates of the listed configs should turn red

``configs`` lists the ids of the DEFAULT matrix a regression should turn red, ``expect`` the signals
that should see it ("weight", "output", "speed", "size", "scope").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from whisper_ptq_bench.configs import DEFAULT
from whisper_ptq_bench.environment import LIBRARIES as STACK
from whisper_ptq_bench.regressions import patches
from whisper_ptq_bench.regressions.patches import (  # noqa: F401 (constants of the catalogue, named by tests)
    BNB_BAD_BLOCK_STRIDE,
    BNB_FORCED_BLOCKSIZE,
    NAN_GROUP_FRACTION,
    NF4_INDEX,
    NF4_VALUE,
    QUANTO_SKIPPED,
)

KINDS = (
    "scale-rounding",
    "codebook",
    "block-size-default",
    "option-default",
    "left-in-float",
    "per-channel-to-tensor",
    "slow-fallback",
    "dequant-gemm",
    "nan-degenerate",
    "attention-numerics",
    "larger-size",
    "scope",
    "activation-numerics",
)
SIGNALS = ("weight", "output", "speed", "size", "scope")
LIBRARIES = tuple(STACK)


@dataclass(frozen=True)
class Regression:
    """One injected regression of a dependency; ``patch()`` returns the context manager that applies it."""

    name: str
    kind: str
    library: str
    configs: tuple[str, ...]
    models_on: str
    expect: str
    patch: Callable[[], contextlib.AbstractContextManager]

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"regression {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.library not in LIBRARIES:
            raise ValueError(f"regression {self.name}: library {self.library!r} is not one of {LIBRARIES}")
        unknown = [s for s in self.signals if s not in SIGNALS]
        if unknown or not self.signals:
            raise ValueError(f"regression {self.name}: expect {self.expect!r} names no signal of {SIGNALS}")
        if not self.configs:
            raise ValueError(f"regression {self.name}: configs is empty")

    @property
    def signals(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.expect.split(",") if s.strip())


# ----------------------------------------------------------------------------- the catalogue

_HQQ = tuple(c for c in DEFAULT if c.startswith("hqq."))
_BNB4 = ("bnb.w-nf4.g64.sym", "bnb.w-nf4.g64.sym.dq=1", "bnb.w-fp4.g64.sym")
_QUANTO = tuple(c for c in DEFAULT if c.startswith("quanto."))
_TORCHAO = tuple(c for c in DEFAULT if c.startswith("torchao."))
_TORCH_AO_DYN8 = (
    "torch-ao.dyn-int8.a-int8.channel.sym",
    "torch-ao.dyn-int8.a-int8.tensor.sym",
    "torch-ao.dyn-int8.a-int8.tensor.asym",
)


def _first(first: str, group: tuple[str, ...]) -> tuple[str, ...]:
    return (first, *(c for c in group if c != first))


CATALOGUE: tuple[Regression, ...] = (
    Regression(
        name="hqq-zero-rounding",
        kind="scale-rounding",
        library="hqq",
        configs=("hqq.w-int3.g64.asym", "hqq.w-int2.g64.asym", "hqq.w-int8.g64.asym"),
        models_on="HQQ's zero-point rounding (round_zero, taken from AutoAWQ, dropbox/hqq#10) is a per-bit-width "
        "BaseQuantizeConfig default ('True if nbits == 4 else False'); here a release rounds at every bit-width.",
        expect="weight",
        patch=patches.hqq_zero_rounding,
    ),
    Regression(
        name="hqq-optimizer-off",
        kind="option-default",
        library="hqq",
        configs=_first("hqq.w-int4.g64.asym", tuple(c for c in _HQQ if c != "hqq.w-int8.g64.asym")),
        models_on="hqq's BaseQuantizeConfig defaults flipped between releases (quant_zero True -> False, axis 0 -> 1 by "
        "0.2.x; transformers#29637 documents the old ones); here the optimize default flips to off.",
        expect="weight,output",
        patch=patches.hqq_optimizer_off,
    ),
    Regression(
        name="hqq-nan-smallest-range",
        kind="nan-degenerate",
        library="hqq",
        configs=_first("hqq.w-int4.g64.asym", _HQQ),
        models_on="HQQ 0.2.7.post1, where near-constant (smallest-range) groups came out of Quantizer.quantize with "
        "NaN scales/zero points.",
        expect="weight,output",
        patch=patches.hqq_nan_smallest_range,
    ),
    Regression(
        name="hqq-redundant-dequant",
        kind="slow-fallback",
        library="hqq",
        configs=_first("hqq.w-int4.g64.asym", _HQQ),
        models_on="hqq's no-cache matmul paths ('No cache: less memory, slower', HQQMatmulNoCache* behind "
        "HQQBackend.PYTORCH), which re-dequantize on every call; here the weight is dequantized three times per call.",
        expect="speed",
        patch=patches.hqq_redundant_dequant,
    ),
    Regression(
        name="hqq-meta-float64",
        kind="larger-size",
        library="hqq",
        configs=_first("hqq.w-int4.g64.asym", _HQQ),
        models_on="hqq dropping its 8-bit quantized zero/scale meta-data ('Quantizing zeros/scales is deprecated'), "
        "which stores the meta-data at full precision; here it is saved as float64, the numbers unchanged.",
        expect="size",
        patch=patches.hqq_meta_float64,
    ),
    Regression(
        name="bnb-nf4-code-value",
        kind="codebook",
        library="bitsandbytes",
        configs=("bnb.w-nf4.g64.sym", "bnb.w-nf4.g64.sym.dq=1"),
        models_on="bitsandbytes keeping separate hand-typed copies of the NF4 table for the CPU/XPU path "
        "(backends/utils.py _NF4_QUANT_TABLE, functional.get_4bit_type, the C kernels), where one mistyped "
        "value changes a release's code book.",
        expect="weight,output",
        patch=patches.bnb_nf4_code_value,
    ),
    Regression(
        name="bnb-blocksize-128",
        kind="block-size-default",
        library="bitsandbytes",
        configs=_first("bnb.w-nf4.g64.sym.dq=1", _BNB4),
        models_on="bitsandbytes' ROCm builds (ROCm/bitsandbytes#23: 'if HIP_ENVIRONMENT: blocksize = 128' in "
        "quantize_4bit), which silently quantized 4-bit weights in blocks of 128 whatever blocksize was asked.",
        expect="weight",
        patch=patches.bnb_blocksize_128,
    ),
    Regression(
        name="bnb-absmax-wrong-blocks",
        kind="scale-rounding",
        library="bitsandbytes",
        configs=_first("bnb.w-fp4.g64.sym", _BNB4),
        models_on="bitsandbytes#1157 (fixed in #1160): the 4-bit quantize kernel for blocksize 4096 ran with the wrong "
        "data-type template and produced wrong blocks (cf. #565); here some blocks keep a neighbour's absmax.",
        expect="weight,output",
        patch=patches.bnb_absmax_wrong_blocks,
    ),
    Regression(
        name="bnb-outliers-in-int8",
        kind="activation-numerics",
        library="bitsandbytes",
        configs=("bnb.dyn-int8.a-int8.channel.sym.threshold=6",),
        models_on="bitsandbytes#1594, which rewrote LLM.int8()'s sparse decomposition into one mixed int8/fp16 op "
        "('This step is missing right now' for the transposed outlier zeroing); here the op sends the outlier "
        "columns through int8 with the rest, so threshold 6 computes as threshold 0. Weights, scope and size are "
        "unchanged: only the outputs show it.",
        expect="output",
        patch=patches.bnb_outliers_in_int8,
    ),
    Regression(
        name="quanto-skip-mlp",
        kind="left-in-float",
        library="optimum-quanto",
        configs=_QUANTO,
        models_on="transformers#25105: the computed list of modules not to convert was wrong for some models "
        "(e.g. a whole 'transformer' prefix), so layers that should have been quantized silently stayed in float.",
        expect="scope,weight,size",
        patch=patches.quanto_skip_mlp,
    ),
    Regression(
        name="quanto-int-zeropoint",
        kind="scale-rounding",
        library="optimum-quanto",
        configs=("quanto.w-int4.g128.asym",),
        models_on="optimum-quanto's switch between integer zero points and float shifts for 2/4-bit weights "
        "(optimum-quanto#131/#133: rounding the zero point measurably changed quantization accuracy).",
        expect="weight",
        patch=patches.quanto_int_zeropoint,
    ),
    Regression(
        name="torchao-perrow-as-pertensor",
        kind="per-channel-to-tensor",
        library="torchao",
        configs=("torchao.w-int8.channel.sym", "torchao.dyn-int8.a-int8.channel.sym"),
        models_on="pytorch/ao#2760: Float8DynamicActivationFloat8WeightConfig defaulted to PerTensor where PerRow "
        "scaling was expected; here the int8 configs' PerRow weights are quantized per tensor.",
        expect="weight,output",
        patch=patches.torchao_perrow_as_pertensor,
    ),
    Regression(
        name="torchao-filter-ignored",
        kind="scope",
        library="torchao",
        configs=_first("torchao.w-int8.tensor.sym", _TORCHAO),
        models_on="transformers#25105, where the skip list missed ChatGLM's output head so the head was quantized; "
        "here torchao's quantize_ drops the caller's filter_fn for its default _is_linear and converts proj_out.",
        expect="scope,weight,output",
        patch=patches.torchao_filter_ignored,
    ),
    Regression(
        name="torch-ao-dequant-gemm",
        kind="dequant-gemm",
        library="torch",
        configs=_TORCH_AO_DYN8,
        models_on="int8 linear paths that dequantize the weight and run an fp32 GEMM instead of the int8 kernel "
        "(pytorch#62804 'int8 linear is slower than fp32 linear'; optimum-quanto#180's float32 fallback).",
        expect="output,speed",
        patch=patches.torch_ao_dequant_gemm,
    ),
    Regression(
        name="torch-ao-qconfig-dict-ignored",
        kind="scope",
        library="torch",
        configs=(*_TORCH_AO_DYN8, "torch-ao.dyn-fp16.a-fp16"),
        models_on="targets chosen by module type instead of name (Samsung/TICO#972: quantize_lm_head=False ignored, "
        "the tied lm_head quantized); here quantize_dynamic's per-name qconfig dict acts as {nn.Linear: qconfig}.",
        expect="scope,weight,output",
        patch=patches.torch_ao_qconfig_dict_ignored,
    ),
    Regression(
        name="whisper-attn-double-scaling",
        kind="attention-numerics",
        library="transformers",
        configs=tuple(DEFAULT),
        models_on="transformers#38277/#38290 (attention refactor): OPT's attention scaling was applied twice once "
        "sdpa created its default scale; Whisper's 'original order of scaling' (#38235) avoids it with scaling=1.0.",
        expect="output",
        patch=patches.whisper_attn_double_scaling,
    ),
)

_BY_NAME = {r.name: r for r in CATALOGUE}


def by_name(name: str) -> Regression:
    """The catalogue entry called ``name``; a ValueError lists the known names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"no regression named {name!r}; known: {', '.join(sorted(_BY_NAME))}") from None
