#!/usr/bin/env bash
# On a GPU machine (driver 580 / CUDA 13, PyTorch + transformers installed, no network, no Rust), from the
# repository root, in about 3 minutes (each step has its own time limit; all together under 5 minutes):
#
#   tools/gpu_check.sh            # needs .gpu/mae-explorer-cuda.xz from tools/cuda_build.sh
#
#   1. unpacks the binary, points LD_LIBRARY_PATH at the CUDA 13 libraries of the PyTorch install (its nvidia-*
#      wheels) and /usr/local/cuda/lib64, prints the GPU (nvidia-smi) and any library the binary cannot find;
#   2. smoke: one `bench` on a fixture model with fused kernels and one with candle's ops; then every fused kernel
#      alone against NumPy in float64 (tools/gpu_kernel_check.py, through CuPy, on .gpu/cuda_kernels.ptx);
#   3. writes a random vit-mae-base-shaped model (tools/bench_torch.py --make-base, else --torch-only);
#   4. parity (tools/gpu_parity.py): `dump --device cuda` on every fixture case in f32/f16/bf16 × fused/candle
#      against the HF fixtures (f32 at 1e-4; f16/bf16 at 3× PyTorch's own f16/bf16 error, measured there), and the
#      base model against PyTorch on the same GPU;
#   5. `bench --device cuda` on the base model: f32/f16/bf16 × fused/candle × attentions kept/not;
#   6. PyTorch's own timing on the same GPU (tools/bench_torch.py --device cuda: eager with attentions, sdpa);
#   7. one table: ours vs PyTorch per dtype, ms and ratios; then the status of every step.
#
# Every step reports and the script goes on when one fails. Logs: $OUT (or /tmp/gpu-check) holds gpu_check.log
# (everything printed), parity.json and summary.txt. Environment: PYTHON (default /opt/torch/.venv/bin/python3,
# else python3), RUNS (timed forwards per bench, default 50); for a dry run of the script itself without a GPU:
# DEVICE=cpu and BINARY=<a CPU build> (only the f32 rows can pass there).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT_DIR="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT_DIR"
exec > >(tee "$OUT_DIR/gpu_check.log") 2>&1
RUNS="${RUNS:-50}"
DEVICE="${DEVICE:-cuda}"
WORK="$(mktemp -d /tmp/gpu-check.XXXXXX)"
REAL_BIN="$WORK/mae-explorer.real"
# A wrapper that runs the binary with the CUDA libraries on LD_LIBRARY_PATH; Python keeps its own environment.
BIN="$WORK/mae-explorer"
BASE="$WORK/mae-base-random"
SUMMARY="$OUT_DIR/summary.txt"
: >"$SUMMARY"
STEPS=()
export PYTHONUNBUFFERED=1

if [[ -z "${PYTHON:-}" ]]; then
  PYTHON=python3
  [[ -x /opt/torch/.venv/bin/python3 ]] && PYTHON=/opt/torch/.venv/bin/python3
fi

export BIN REAL_BIN BASE RUNS PYTHON WORK OUT_DIR DEVICE BINARY

# run_step NAME SECONDS COMMAND...: runs COMMAND (a program or an exported function) with a time limit, records
# ok/FAILED/TIMEOUT and the duration.
run_step() {
  local name="$1" limit="$2"
  shift 2
  echo
  echo "=== $name (limit ${limit}s): $*"
  local start status
  start=$(date +%s.%N)
  timeout --kill-after=5 "$limit" bash -c '"$@"' run_step "$@"
  status=$?
  local seconds
  seconds=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
  local verdict=ok
  [[ $status -ne 0 ]] && verdict="FAILED (exit $status)"
  [[ $status -eq 124 || $status -eq 137 ]] && verdict="TIMEOUT"
  STEPS+=("$(printf '%-22s %-18s %6ss' "$name" "$verdict" "$seconds")")
  echo "=== $name: $verdict in ${seconds}s"
  return $status
}

# ---- 1. binary, libraries, GPU -------------------------------------------------------------------------------
setup() {
  if [[ -n "${BINARY:-}" ]]; then
    cp "$BINARY" "$REAL_BIN" || return 1
  else
    # xz through Python's lzma: the GPU machines have no zstd, and Python is always there.
    [[ -f .gpu/mae-explorer-cuda.xz ]] || { echo "no .gpu/mae-explorer-cuda.xz: run tools/cuda_build.sh, carry .gpu"; return 1; }
    "$PYTHON" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      .gpu/mae-explorer-cuda.xz "$REAL_BIN" && chmod +x "$REAL_BIN" || return 1
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,utilization.gpu \
    --format=csv,noheader || echo "nvidia-smi failed"
  "$PYTHON" -c 'import sys, torch, transformers; print("python", sys.version.split()[0], "torch", torch.__version__,
"cuda", torch.version.cuda, "transformers", transformers.__version__, "gpu", torch.cuda.get_device_name(0))' \
    || echo "torch/transformers not usable from $PYTHON: the PyTorch steps will fail"
  command -v nvcc >/dev/null && nvcc --version | tail -n1
  grep -c '^processor' /proc/cpuinfo | sed 's/^/cpu threads: /'
  grep -m1 'model name' /proc/cpuinfo
}
find_cuda_libraries() {
  "$PYTHON" - <<'EOF'
import glob, os, site
wanted = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libnvrtc.so.13")
roots = [p for p in site.getsitepackages() + [site.getusersitepackages()] if os.path.isdir(p)]
dirs = []
for root in roots:
    for name in wanted:
        for path in glob.glob(os.path.join(root, "nvidia", "**", name), recursive=True):
            folder = os.path.dirname(os.path.realpath(path))
            if folder not in dirs:
                dirs.append(folder)
print(":".join(dirs))
EOF
}
export -f setup
run_step setup 60 setup
LIBS="$(find_cuda_libraries 2>/dev/null || true)"
for extra in /usr/local/cuda/lib64 /usr/local/nvidia/lib64; do  # the driver's libcuda.so.1 is usually on the default path
  [[ -d "$extra" ]] && LIBS="${LIBS:+$LIBS:}$extra"
done
BIN_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH for the binary: $BIN_LIBRARY_PATH"
printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$BIN_LIBRARY_PATH" "$REAL_BIN" >"$BIN"
chmod +x "$BIN"
if [[ -x "$REAL_BIN" ]]; then
  echo "libraries the binary needs:"
  LD_LIBRARY_PATH="$BIN_LIBRARY_PATH" ldd "$REAL_BIN" | grep -E 'cuda|cublas|curand|nvrtc|not found' | sed 's/^/  /'
  if LD_LIBRARY_PATH="$BIN_LIBRARY_PATH" ldd "$REAL_BIN" | grep -q 'not found'; then
    STEPS+=("$(printf '%-22s %-18s' libraries 'FAILED (missing)')")
  fi
fi

# ---- 2. smoke -------------------------------------------------------------------------------------------------
run_step smoke-fused 90 "$BIN" bench --model tests/fixtures/models/tiny-p8 --device "$DEVICE" --runs 3 --warmup 1
run_step smoke-candle 90 "$BIN" bench --model tests/fixtures/models/tiny-p8 --device "$DEVICE" --runs 3 --warmup 1 \
  --kernels candle

run_step kernels 90 "$PYTHON" tools/gpu_kernel_check.py .gpu/cuda_kernels.ptx

# ---- 3. base model --------------------------------------------------------------------------------------------
# transformers builds it and every tensor is checked after reloading; where that transformers keeps parameter names
# hub_layout.py does not know, the model is written without it (then checked to load with no missing key).
run_step make-base 120 "$PYTHON" tools/bench_torch.py --make-base "$BASE" \
  || run_step make-base-torch-only 120 "$PYTHON" tools/bench_torch.py --make-base "$BASE" --torch-only

# ---- 4. parity ------------------------------------------------------------------------------------------------
run_step parity 200 "$PYTHON" tools/gpu_parity.py --bin "$BIN" --out "$OUT_DIR" --jobs 8 --base-model "$BASE" \
  --device "$DEVICE"

# ---- 5. our speed ---------------------------------------------------------------------------------------------
# Medians go to $WORK/medians as "key value" lines (the steps run in child shells).
bench_ours() {
  local dtype kernels attention line extra median failed=0
  for dtype in f32 f16 bf16; do
    for kernels in fused candle; do
      for attention in kept none; do
        extra=()
        [[ "$attention" == none ]] && extra=(--no-attentions)
        line="$("$BIN" bench --model "$BASE" --device "$DEVICE" --dtype "$dtype" --kernels "$kernels" --runs "$RUNS" \
          --warmup 10 "${extra[@]}" 2>&1 | tail -n1)"
        echo "$line"
        median="$(grep -o 'median_ms=[0-9.]*' <<<"$line" | cut -d= -f2)"
        [[ -n "$median" ]] || failed=1
        echo "ours-$kernels-$attention-$dtype $median" >>"$WORK/medians"
      done
    done
  done
  return "${failed:-0}"
}
export -f bench_ours
run_step bench-ours 150 bench_ours

# ---- 6. PyTorch's speed ---------------------------------------------------------------------------------------
bench_torch() {
  local dtype output failed=0
  for dtype in f32 f16 bf16; do
    output="$("$PYTHON" tools/bench_torch.py --model "$BASE" --device "$DEVICE" --dtype "$dtype" --runs "$RUNS" \
      --warmup 10 2>&1)" || failed=1
    echo "$output"
    echo "torch-eager-$dtype $(grep '^torch eager ' <<<"$output" | grep -o 'median_ms=[0-9.]*' | cut -d= -f2)" \
      >>"$WORK/medians"
    echo "torch-sdpa-$dtype $(grep '^torch sdpa ' <<<"$output" | grep -o 'median_ms=[0-9.]*' | cut -d= -f2)" \
      >>"$WORK/medians"
  done
  return $failed
}
export -f bench_torch
run_step bench-torch 150 bench_torch
declare -A MS
if [[ -f "$WORK/medians" ]]; then
  while read -r key value; do MS["$key"]="$value"; done <"$WORK/medians"
fi

# ---- 7. the table ---------------------------------------------------------------------------------------------
{
  echo
  echo "=== forward pass, vit-mae-base shapes, batch 1, mask ratio 0.75, median of $RUNS after 10 warm-up (ms)"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /'
  printf '%-5s %11s %11s %11s %11s %11s %11s %10s %10s\n' dtype fused+att fused candle+att candle \
    'torch eager' 'torch sdpa' 'fused/sdpa' 'f+att/eag'
  for dtype in f32 f16 bf16; do
    awk -v d="$dtype" -v fa="${MS[ours-fused-kept-$dtype]:-}" -v fn="${MS[ours-fused-none-$dtype]:-}" \
      -v ca="${MS[ours-candle-kept-$dtype]:-}" -v cn="${MS[ours-candle-none-$dtype]:-}" \
      -v te="${MS[torch-eager-$dtype]:-}" -v ts="${MS[torch-sdpa-$dtype]:-}" 'function show(x) {
        return x == "" ? "-" : sprintf("%.3f", x) }
      function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f", a / b) }
      BEGIN { printf "%-5s %11s %11s %11s %11s %11s %11s %10s %10s\n", d, show(fa), show(fn), show(ca), show(cn),
        show(te), show(ts), ratio(fn, ts), ratio(fa, te) }'
  done
  echo "(fused/candle: our binary with its fused CUDA kernels / with candle's composed ops; +att: attention"
  echo " probabilities of every layer kept, as the window runs it and as torch eager returns them; without +att"
  echo " comparable to torch sdpa, which returns none. Targets: f32 fused/sdpa <= 1.0, f16 fused < 5 ms.)"
  echo
  grep -E '^(torch .* on|[a-z0-9]+ +(fused|candle) +([0-9]+/|unjudged)|  (f32|f16|bf16) +(fused|candle)|vit-mae-base|PARITY|KERNELS)' \
    "$OUT_DIR/gpu_check.log" 2>/dev/null | head -n 30
  grep -E '^(  FAIL|FAIL)' "$OUT_DIR/gpu_check.log" 2>/dev/null | cut -c1-200 | head -n 12
  echo "(every failure: gpu_check.log and parity.json)"
  echo
  echo "=== steps"
  printf '%s\n' "${STEPS[@]}"
} | tee "$SUMMARY"
rm -rf "$WORK"
