#!/usr/bin/env bash
# Build the `--features cuda` release binary on a machine without a CUDA toolkit or GPU, and pack it for a GPU
# machine.
#
#   tools/cuda_build.sh [--toolchain-only] [--clippy]
#
# 1. Sets up CUDA 13.0.x from NVIDIA's own PyPI wheels in $CUDA_TOOLCHAIN_DIR (default /work/cuda-toolchain,
#    outside the repository; idempotent, ~1.2 GB). 13.0 because the GPU machines run driver 580 (CUDA 13.0): PTX
#    from a newer nvcc is refused by an older driver. A stand-in libcuda.so (every cu* entry point returns an
#    error) is made for *linking only*: the real one comes with the driver, and the stand-in is never packed.
# 2. Builds `cargo build --release --features cuda` into target/cuda (its own target dir, so CPU builds are not
#    invalidated), CUDA_COMPUTE_CAP=90 (H100/H200; candle's kernels and ours become sm_90a PTX), under
#    `flock /tmp/cargo.lock` like every cargo command on the shared machine. CUDAFORGE_THREADS=2 lets
#    candle-kernels' build script run two nvcc at once (it uses half the cores by default: 1 of 2 here).
# 3. Strips the binary and packs it with `xz -9` into .gpu/mae-explorer-cuda.xz (the GPU machines have no zstd;
#    Python's lzma unpacks it there), beside our kernels' PTX
#    (.gpu/cuda_kernels.ptx). .gpu/ is git-ignored; carry it to the GPU machine, where tools/gpu_check.sh runs both.
#
# --toolchain-only: step 1 only.  --clippy: also run clippy -D warnings on the workspace with --features cuda
# (release profile, same target dir, so it reuses the build's compiled CUDA kernels).
# The ordinary build and CI need none of this: without --features cuda nothing here is used.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLCHAIN="${CUDA_TOOLCHAIN_DIR:-/work/cuda-toolchain}"
PYTHON="${PYTHON:-python3}"
TOOLCHAIN_ONLY=0
CLIPPY=0
for arg in "$@"; do
  case "$arg" in
    --toolchain-only) TOOLCHAIN_ONLY=1 ;;
    --clippy) CLIPPY=1 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cuda_build: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "cuda_build: error: $*" >&2; exit 1; }

# Pinned to what the GPU machines' driver (580, CUDA 13.0) accepts; all merge into nvidia/cu13/.
WHEELS=(
  nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
)
CUDA_HOME_DIR="$TOOLCHAIN/cuda"
STAMP="$TOOLCHAIN/.complete-$(printf '%s\n' "${WHEELS[@]}" | sha256sum | cut -c1-16)"

setup_toolchain() {
  if [[ -f "$STAMP" ]]; then
    echo "== CUDA toolchain already in $TOOLCHAIN"
    return
  fi
  command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found (set PYTHON=...)"
  echo "== installing CUDA 13.0 wheels into $TOOLCHAIN/wheels (no system install)"
  rm -rf "$TOOLCHAIN/wheels" "$CUDA_HOME_DIR"
  mkdir -p "$TOOLCHAIN"
  "$PYTHON" -m pip install --quiet --no-deps --no-compile --target "$TOOLCHAIN/wheels" "${WHEELS[@]}" \
    || die "pip could not install the CUDA wheels (is PyPI reachable?)"
  local cu13="$TOOLCHAIN/wheels/nvidia/cu13"
  [[ -x "$cu13/bin/nvcc" ]] || die "no nvcc in $cu13/bin after installing the wheels"

  # A CUDA_HOME-shaped folder: what nvcc, cudarc and cudaforge look for.
  mkdir -p "$CUDA_HOME_DIR/lib64/stubs"
  ln -sfn "$cu13/bin" "$CUDA_HOME_DIR/bin"
  ln -sfn "$cu13/include" "$CUDA_HOME_DIR/include"
  ln -sfn "$cu13/nvvm" "$CUDA_HOME_DIR/nvvm"
  local lib
  for lib in "$cu13"/lib/*.so*; do ln -sfn "$lib" "$CUDA_HOME_DIR/lib64/$(basename "$lib")"; done
  # The linker looks for unversioned names, which only a toolkit's -dev packages provide.
  local name versioned
  for name in cudart cublas cublasLt curand nvrtc; do
    versioned="$(cd "$CUDA_HOME_DIR/lib64" && ls "lib$name.so."* 2>/dev/null | sort | head -n1)"
    [[ -n "$versioned" ]] || die "lib$name.so.* missing from the wheels"
    ln -sfn "$versioned" "$CUDA_HOME_DIR/lib64/lib$name.so"
  done

  # No wheel ships libcuda (it is the driver). Linking needs one: every cu* function cudarc declares, each
  # returning CUDA_ERROR_UNKNOWN (999). Only for the linker; the binary loads the driver's libcuda.so.1.
  local cudarc_sys
  cudarc_sys="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs 2>/dev/null | head -n1)"
  [[ -n "$cudarc_sys" ]] || (cd "$ROOT" && flock /tmp/cargo.lock cargo fetch --quiet)
  cudarc_sys="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs | head -n1)"
  {
    echo "/* Link-time stand-in for the NVIDIA driver library: never shipped, never loaded. */"
    grep -o 'pub unsafe fn cu[A-Za-z0-9_]*' "$cudarc_sys" | sed 's/pub unsafe fn //' | sort -u \
      | sed 's/.*/int &(void) { return 999; }/'
  } >"$TOOLCHAIN/libcuda_stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA_HOME_DIR/lib64/stubs/libcuda.so" "$TOOLCHAIN/libcuda_stub.c"

  "$CUDA_HOME_DIR/bin/nvcc" --version | tail -n2
  touch "$STAMP"
}

setup_toolchain
[[ "$TOOLCHAIN_ONLY" == 1 ]] && exit 0

command -v xz >/dev/null || die "xz not found (apt-get install xz-utils)"
export CUDA_HOME="$CUDA_HOME_DIR"
export PATH="$CUDA_HOME/bin:$PATH"
export CUDA_COMPUTE_CAP=90
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-2}"
export CARGO_TARGET_DIR="$ROOT/target/cuda"
cd "$ROOT"

echo "== cargo build --release --features cuda (target dir $CARGO_TARGET_DIR; the first build takes 40+ minutes)"
start=$(date +%s)
flock /tmp/cargo.lock cargo build --release --features cuda -p mae-explorer
echo "== built in $(( $(date +%s) - start )) s"

if [[ "$CLIPPY" == 1 ]]; then
  echo "== cargo clippy --release --workspace --all-targets --features mae-explorer/cuda -- -D warnings"
  flock /tmp/cargo.lock cargo clippy --release --workspace --all-targets --features mae-explorer/cuda -- -D warnings
fi

binary="$CARGO_TARGET_DIR/release/mae-explorer"
mkdir -p "$ROOT/.gpu"
strip -o "$ROOT/.gpu/mae-explorer-cuda" "$binary"
if ldd "$ROOT/.gpu/mae-explorer-cuda" | grep -q "$TOOLCHAIN"; then
  die "the binary resolves a library from $TOOLCHAIN (the stand-in libcuda?): it must load the driver's own"
fi
xz -9 -T0 -f -c "$ROOT/.gpu/mae-explorer-cuda" > "$ROOT/.gpu/mae-explorer-cuda.xz"
rm -f "$ROOT/.gpu/mae-explorer-cuda"
# Our kernels' PTX too, for tools/gpu_kernel_check.py (each kernel alone, through CuPy).
ptx="$(ls -t "$CARGO_TARGET_DIR"/release/build/mae-model-*/out/cuda_kernels.ptx 2>/dev/null | head -n1)"
[[ -n "$ptx" ]] || die "no cuda_kernels.ptx under $CARGO_TARGET_DIR/release/build/mae-model-*/out"
cp "$ptx" "$ROOT/.gpu/cuda_kernels.ptx"
ls -l "$ROOT/.gpu/"
echo "== packed: carry .gpu to the GPU machine and run tools/gpu_check.sh there"
