#!/usr/bin/env python3
"""Each fused CUDA kernel of model/src/cuda_kernels.cu on its own, against a float64 NumPy reference.

    python3 tools/gpu_kernel_check.py .gpu/cuda_kernels.ptx

Run by tools/gpu_check.sh on the GPU machine (CuPy loads the PTX that tools/cuda_build.sh packed; no Rust
involved), so a parity failure of the binary can be pinned on one kernel, one dtype and one shape. For every
kernel × dtype × shape: fresh random inputs, rounded to the dtype first (the reference sees exactly what the
kernel sees); the output poisoned with NaN before the launch, so an unwritten element fails; the launch run
twice and required to give identical bits (a race would not); relative L2 against float64 within 1e-5 (f32),
2e-3 (f16: a few units of its 2^-11 rounding) or 1.6e-2 (bf16: 2^-8). Shapes cover the tiny fixtures, ViTMAE
base/huge and the corners: one token, head sizes above the block's 128 threads, widths that are not a multiple
of the block. Prints one line per check and exits 1 if any failed.
"""

from __future__ import annotations

import sys

import cupy as cp
import numpy as np

TOLERANCE = {"f32": 1e-5, "f16": 2e-3, "bf16": 1.6e-2}
ROW_THREADS, ELEMENTWISE_THREADS, SCRATCH = 128, 256, 32
rng = np.random.default_rng(0)


def to_device(values: np.ndarray, dtype: str):
    """float64 values -> (device array in dtype, the float64 values it holds after rounding)."""
    values = values.astype(np.float32)
    if dtype == "f32":
        return cp.asarray(values), values.astype(np.float64)
    if dtype == "f16":
        rounded = values.astype(np.float16)
        return cp.asarray(rounded), rounded.astype(np.float64)
    bits = values.view(np.uint32).astype(np.uint64)
    bf16 = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
    return cp.asarray(bf16), (bf16.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def from_device(array, dtype: str) -> np.ndarray:
    host = cp.asnumpy(array)
    if dtype == "bf16":
        return (host.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return host.astype(np.float64)


def empty(count: int, dtype: str):
    """A device buffer filled with NaN (0xFFFF is a NaN in both f16 and bf16)."""
    if dtype == "f32":
        return cp.full(count, np.nan, dtype=cp.float32)
    if dtype == "f16":
        return cp.full(count, np.nan, dtype=cp.float16)
    return cp.full(count, 0xFFFF, dtype=cp.uint16)


def relative_l2(got: np.ndarray, want: np.ndarray) -> float:
    if not np.all(np.isfinite(got)):
        return float("nan")
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def launch_twice(run, dtype: str):
    first = from_device(run(), dtype)
    second = from_device(run(), dtype)
    same = np.array_equal(first, second, equal_nan=True)
    return first, same


def check_layer_norm(module, dtype, rows, width):
    x, x64 = to_device(rng.standard_normal((rows, width)) * 3 + 5, dtype)  # large mean, as in a residual stream
    w, w64 = to_device(1 + 0.1 * rng.standard_normal(width), dtype)
    b, b64 = to_device(0.1 * rng.standard_normal(width), dtype)
    eps = 1e-12
    kernel = module.get_function(f"mae_layer_norm_{dtype}")

    def run():
        out = empty(rows * width, dtype)
        kernel((rows,), (ROW_THREADS,), (x, w, b, out, np.int32(rows), np.int32(width), np.float32(eps)),
               shared_mem=(width + SCRATCH) * 4)
        return out

    got, same = launch_twice(run, dtype)
    mean = x64.mean(-1, keepdims=True)
    want = (x64 - mean) / np.sqrt(((x64 - mean) ** 2).mean(-1, keepdims=True) + eps) * w64 + b64
    return relative_l2(got, want.ravel()), same


def check_bias_gelu(module, dtype, rows, width):
    from math import erf

    x, x64 = to_device(rng.standard_normal((rows, width)) * 2, dtype)
    b, b64 = to_device(0.1 * rng.standard_normal(width), dtype)
    kernel = module.get_function(f"mae_bias_gelu_{dtype}")
    count = rows * width
    blocks = max(1, min(65535, -(-count // ELEMENTWISE_THREADS)))

    def run():
        out = empty(count, dtype)
        kernel((blocks,), (ELEMENTWISE_THREADS,), (x, b, out, np.uint64(count), np.int32(width)))
        return out

    got, same = launch_twice(run, dtype)
    v = (x64 + b64).ravel()
    want = 0.5 * v * (1 + np.vectorize(erf)(v / np.sqrt(2)))
    return relative_l2(got, want), same


def check_bias_residual(module, dtype, rows, width):
    x, x64 = to_device(rng.standard_normal((rows, width)), dtype)
    b, b64 = to_device(0.1 * rng.standard_normal(width), dtype)
    r, r64 = to_device(rng.standard_normal((rows, width)) * 4, dtype)
    kernel = module.get_function(f"mae_bias_residual_{dtype}")
    count = rows * width
    blocks = max(1, min(65535, -(-count // ELEMENTWISE_THREADS)))

    def run():
        out = empty(count, dtype)
        kernel((blocks,), (ELEMENTWISE_THREADS,), (x, b, r, out, np.uint64(count), np.int32(width)))
        return out

    got, same = launch_twice(run, dtype)
    return relative_l2(got, (r64 + x64 + b64).ravel()), same


def check_attention(module, dtype, tokens, heads, head_dim, keep):
    width = heads * head_dim
    qkv, qkv64 = to_device(rng.standard_normal((tokens, 3 * width)), dtype)
    scale = head_dim ** -0.5
    kernel = module.get_function(f"mae_attention_{dtype}")
    probabilities_len = heads * tokens * tokens if keep else 0
    count = probabilities_len + tokens * width
    slices = ROW_THREADS // head_dim if head_dim <= ROW_THREADS else 1
    shared = (head_dim + tokens + max(ROW_THREADS, head_dim) + SCRATCH) * 4
    assert slices * head_dim <= max(ROW_THREADS, head_dim)

    def run():
        out = empty(count, dtype)
        kernel((tokens, heads), (ROW_THREADS,),
               (qkv, out, np.int32(tokens), np.int32(heads), np.int32(head_dim), np.float32(scale), np.int32(keep)),
               shared_mem=shared)
        return out

    got, same = launch_twice(run, dtype)
    q = qkv64[:, :width].reshape(tokens, heads, head_dim).transpose(1, 0, 2)
    k = qkv64[:, width:2 * width].reshape(tokens, heads, head_dim).transpose(1, 0, 2)
    v = qkv64[:, 2 * width:].reshape(tokens, heads, head_dim).transpose(1, 0, 2)
    scores = q @ k.transpose(0, 2, 1) * scale
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    context = (p @ v).transpose(1, 0, 2).reshape(tokens, width)
    want = np.concatenate([p.ravel(), context.ravel()]) if keep else context.ravel()
    errors = [relative_l2(got[probabilities_len:], context.ravel())]
    if keep:
        errors.append(relative_l2(got[:probabilities_len], p.ravel()))
    return max(errors) if all(e == e for e in errors) else float("nan"), same and got.shape == want.shape


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    module = cp.RawModule(path=sys.argv[1])
    print(f"GPU {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, PTX {sys.argv[1]}")
    checks = []
    for rows, width in [(1, 24), (37, 32), (50, 768), (197, 512), (3, 1000), (257, 1280)]:
        checks.append(("layer_norm", f"{rows}x{width}", check_layer_norm, (rows, width)))
    for rows, width in [(3, 5), (50, 3072), (197, 2048)]:
        checks.append(("bias_gelu", f"{rows}x{width}", check_bias_gelu, (rows, width)))
        checks.append(("bias_residual", f"{rows}x{width}", check_bias_residual, (rows, width)))
    for tokens, heads, head_dim in [(1, 4, 8), (5, 8, 4), (37, 2, 8), (50, 12, 64), (197, 16, 32), (257, 16, 80),
                                    (70, 1, 200)]:
        for keep in (1, 0):
            checks.append(("attention", f"n={tokens} h={heads} d={head_dim} keep={keep}", check_attention,
                           (tokens, heads, head_dim, keep)))
    failed = 0
    for dtype in ("f32", "f16", "bf16"):
        for name, shape, check, arguments in checks:
            try:
                error, deterministic = check(module, dtype, *arguments)
                cp.cuda.runtime.deviceSynchronize()
                ok = error <= TOLERANCE[dtype] and deterministic
                note = "" if deterministic else " (two launches differ: race?)"
                line = f"{'ok  ' if ok else 'FAIL'} {name:13} {dtype:4} {shape:26} rel.L2 {error:.2e}{note}"
            except Exception as exc:  # noqa: BLE001 - report any launch error and go on
                ok, line = False, f"FAIL {name:13} {dtype:4} {shape:26} {type(exc).__name__}: {exc}"
            failed += not ok
            print(line, flush=True)
    print(f"KERNELS {'PASSED' if failed == 0 else f'FAILED ({failed} checks)'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
