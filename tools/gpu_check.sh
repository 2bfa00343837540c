#!/usr/bin/env bash
# The suite's CUDA paths on one GPU, without hub access: a random Whisper of the study's shape (whisper-small),
# the GPU tests, then the main job recording GPU baselines and a second run gated against them.
#
#   tools/gpu_check.sh TOKENIZER_DIR OUT_DIR
#
# TOKENIZER_DIR: any transformers Whisper directory (its tokenizer and feature files are reused).
# Environment: QUANTO_BUILD_S (900), SHAPE (small), DEVICE (cuda), UTTERANCES (8), MATRIX (the GPU configurations below),
# TESTS_K (a -k filter for the GPU tests), TESTS_S / RECORD_S / CHECK_S (time limits, seconds; CHECK_S=0 skips
# the second run). Logs, baselines and results go to OUT_DIR.
set -uo pipefail
tok=${1:?TOKENIZER_DIR}
out=${2:?OUT_DIR}
shape=${SHAPE:-small}
device=${DEVICE:-cuda}
work=${TMPDIR:-/tmp}/ptq-gpu-check
mkdir -p "$out" "$work"
model=$work/random-$shape
matrix=${MATRIX:-fp32,torchao.w-int8.channel.sym,torchao.dyn-int8.a-int8.channel.sym,quanto.w-int8.channel.sym,quanto.w-int4.g128.asym,hqq.w-int4.g64.asym,hqq.w-int4.g64.asym.backend=torchao_int4,bnb.dyn-int8.a-int8.channel.sym.threshold=6,bnb.w-nf4.g64.sym,bnb.w-fp4.g64.sym,torchao.w-int4.g128.asym.kernel=tinygemm}

# pytest loads the plugin from the installed package's entry point; from a bare checkout, name it
plugin=()
python3 -c "import importlib.metadata as m; m.distribution('whisper-ptq-bench')" 2>/dev/null || plugin=(-p whisper_ptq_bench.plugin)

{ nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv 2>&1 || true
  python3 - <<'EOF'
import importlib.metadata as m
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.is_available() and torch.cuda.get_device_name())
for name in ("transformers", "optimum-quanto", "hqq", "bitsandbytes", "torchao", "pytest-benchmark"):
    try:
        print(name, m.version(name))
    except m.PackageNotFoundError:
        print(name, "not installed")
EOF
} 2>&1 | tee "$out/versions.txt"

python3 -m tools.random_whisper "$tok" "$model" --shape "$shape" 2>&1 | tail -1 | tee -a "$out/versions.txt"
[ -f "$model/config.json" ] || exit 1

# optimum-quanto compiles its CUDA kernels (unpack, AWQ, Marlin: 8 sources) with nvcc on its first int4 use on
# CUDA, into its own package directory. Build them first, on their own clock, so no case waits on the compiler.
start=$(date +%s)
timeout "${QUANTO_BUILD_S:-900}" python3 -c \
  "from optimum.quanto.library.extensions import get_extension; get_extension('quanto_cuda').lib" >/dev/null 2>&1
echo "quanto CUDA extension build: exit $?, $(( $(date +%s) - start )) s" | tee -a "$out/versions.txt"

# SIGINT at the limit: pytest still prints its summary (which cases failed, and why)
timeout -s INT -k 30 "${TESTS_S:-200}" python3 -m pytest "${plugin[@]}" tests/test_backends.py -m gpu -k "${TESTS_K:-}" -rs -q \
  -p no:cacheprovider 2>&1 \
  | tee "$out/gpu-tests.log"

run() {  # run NAME LIMIT [extra pytest options]: the main job on the random model
  local name=$1 limit=$2
  shift 2
  timeout -s INT -k 30 "$limit" python3 -m pytest "${plugin[@]}" benchmarks/ --benchmark-only -p no:cacheprovider \
    --ptq-device="$device" --ptq-model="$model" --ptq-corpus=read-clean --ptq-max-utterances="${UTTERANCES:-8}" \
    --ptq-matrix="$matrix" --ptq-baselines="$work/baselines-gpu.json" --benchmark-json="$out/$name.json" "$@" 2>&1 \
    | tee "$out/$name.log"
}
run record "${RECORD_S:-300}" --ptq-update-baselines
[ "${CHECK_S:-240}" = 0 ] || run check "${CHECK_S:-240}"
cp "$work/baselines-gpu.json" "$out/" 2>/dev/null  # seven files in OUT_DIR: versions, tests, two runs' logs and JSON, baselines
