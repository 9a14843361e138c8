#!/usr/bin/env python3
"""`mae-explorer dump --device cuda` against the HF fixtures, in f32/f16/bf16, fused kernels and candle's ops.

    python3 tools/gpu_parity.py --bin BINARY --out DIR [--jobs 8] [--dtypes f32,f16,bf16] [--kernels fused,candle]
                                [--device cuda] [--base-model DIR]

Run by tools/gpu_check.sh on the GPU machine (also works with --device cpu and a CPU build, for a dry run).

Every fixture case (tests/fixtures/cases/<model>/<case>.safetensors; its pixel values, noise and mask ratio go to
`dump` exactly as tests/tests/parity.rs passes them) runs once per dtype × kernels. Each output is compared with
the fixture the way tests/src/lib.rs compares them: relative L2 for float tensors, |Δ|/|ref| for the loss,
noise/mask/ids_restore exactly (and pixel_values exactly in f32).

Tolerances. f32: 1e-4, the project's parity bound. f16/bf16: 3 × the worst relative L2 that PyTorch's *own*
forward in that dtype (same fixture model and inputs, eager attention, on this GPU) lands from the f32 fixture,
over all cases and over the outputs HF returns (logits, last_hidden_state, encoder and decoder attentions, loss):
so "as close to f32 as PyTorch itself gets in that dtype, with a factor 3 for a different but equally valid
order of rounding". Without torch + transformers the low-precision rows are reported but not judged.

--base-model DIR (a vit-mae-base-shaped random model): also runs ours and PyTorch on it (seed 0, ratio 0.75,
f32 with TF32 off, f16, bf16) and compares logits and last_hidden_state, which tests the real shapes (197 tokens,
head sizes 64 and 32) that the tiny fixtures cannot.

Writes DIR/parity.json (every number) and prints one summary line per (dtype, kernels) and every failure.
Exit status 0 when everything judged passed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
F32_TOLERANCE = 1e-4
LOW_PRECISION_FACTOR = 3.0
EXACT = ("noise", "mask", "ids_restore")


def relative_l2(actual: np.ndarray, expected: np.ndarray) -> float:
    a, b = actual.astype(np.float64).ravel(), expected.astype(np.float64).ravel()
    norm = float(np.linalg.norm(b))
    diff = float(np.linalg.norm(a - b))
    return diff / norm if norm > 0 else diff


def tensor_error(name: str, got: np.ndarray, want: np.ndarray) -> float:
    """The error the Rust parity test measures: relative L2, or |Δ|/|ref| for the 0-d loss (NaN-aware)."""
    if name == "loss":
        g, w = float(got), float(want)
        if math.isnan(w) or math.isnan(g):
            return 0.0 if math.isnan(w) and math.isnan(g) else math.inf
        return abs(g - w) / max(abs(w), 1e-12)
    return relative_l2(got, want)


def compare(ours: dict, reference: dict, tolerance: float | None, exact_pixels: bool) -> tuple[float, str, list[str]]:
    """(worst float error, its tensor, problems) of one dump against one fixture case; tolerance None = unjudged."""
    problems, worst, worst_name = [], 0.0, ""
    for name in sorted(reference):
        want = reference[name]
        got = ours.get(name)
        if got is None:
            problems.append(f"{name}: missing")
            continue
        if got.shape != want.shape:
            problems.append(f"{name}: shape {list(got.shape)}, expected {list(want.shape)}")
            continue
        if name in EXACT or (name == "pixel_values" and exact_pixels):
            if not np.array_equal(got.astype(np.float64), want.astype(np.float64)):
                problems.append(f"{name}: differs (must be exact)")
            continue
        error = tensor_error(name, got, want)
        if not error <= worst:  # NaN counts as the worst
            worst, worst_name = error, name
        if tolerance is not None and not error <= tolerance:
            problems.append(f"{name}: error {error:.3e} > {tolerance:.1e}")
    for name in sorted(set(ours) - set(reference)):
        problems.append(f"{name}: not in the reference")
    return worst, worst_name, problems


def fixture_cases() -> list[dict]:
    cases = []
    for case_path in sorted((FIXTURES / "cases").glob("*/*.safetensors")):
        with safe_open(str(case_path), framework="numpy") as f:
            metadata = f.metadata() or {}
        cases.append(
            {
                "model": case_path.parent.name,
                "name": f"{case_path.parent.name}/{case_path.stem}",
                "path": case_path,
                "ratio": metadata["mask_ratio"],
                "interpolate": metadata.get("interpolate_pos_encoding") == "true",
            }
        )
    return cases


def run_dump(binary: str, device: str, model: Path, inputs: dict, dtype: str, kernels: str, out: Path) -> str | None:
    """Runs one dump; returns the error text, or None."""
    command = [
        binary, "dump", "--model", str(model), "--device", device, "--dtype", dtype, "--kernels", kernels,
        "--mask-ratio", inputs["ratio"], "--pixel-values", str(inputs["pixel_values"]), "--noise",
        str(inputs["noise"]), "--out", str(out),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "dump timed out after 120 s"
    if done.returncode != 0:
        return f"dump exit {done.returncode}: {(done.stderr or done.stdout).strip()[-600:]}"
    return None


# ----------------------------------------------------------------------------------------------------------------
# PyTorch's own low-precision forward: the yardstick for the f16/bf16 tolerance.

def torch_available(device: str) -> str | None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except Exception as error:  # noqa: BLE001 - any import failure means "no reference"
        return f"torch/transformers not importable ({error})"
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if device == "cuda" and not torch.cuda.is_available():
        return "torch sees no CUDA device"
    return None


def torch_outputs(model_dir: Path, pixel_values: np.ndarray, noise: np.ndarray, ratio: float, interpolate: bool,
                  dtype: str, device: str) -> dict[str, np.ndarray]:
    """HF's eager forward in `dtype` on `device`, as float32 numpy arrays under dump's names (decoder attentions
    through forward hooks, as tools/make_fixtures.py captures them; left out if this transformers differs)."""
    import torch
    from transformers import ViTMAEForPreTraining

    torch_dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype]
    model = ViTMAEForPreTraining.from_pretrained(str(model_dir), attn_implementation="eager")
    model.to(device=device, dtype=torch_dtype).eval()
    model.config.mask_ratio = ratio
    captured: dict = {}
    hooks = [model.vit.layernorm.register_forward_hook(lambda m, i, o: captured.__setitem__("lhs", o))]
    try:
        for j, layer in enumerate(model.decoder.decoder_layers):
            def keep(m, args, output, j=j):
                if isinstance(output, tuple) and len(output) > 1 and output[1] is not None:
                    captured[f"decoder_attentions.{j}"] = output[1]
            hooks.append(layer.attention.register_forward_hook(keep))
    except AttributeError:
        pass  # another module layout: compare without decoder attentions
    try:
        with torch.no_grad():
            out = model(
                pixel_values=torch.from_numpy(pixel_values).to(device=device, dtype=torch_dtype),
                noise=torch.from_numpy(noise).to(device),
                interpolate_pos_encoding=interpolate,
                output_attentions=True,
            )
    finally:
        for hook in hooks:
            hook.remove()
    host = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
    result = {"logits": host(out.logits), "loss": host(out.loss)}
    if "lhs" in captured:
        result["last_hidden_state"] = host(captured["lhs"])
    for i, attention in enumerate(out.attentions or ()):
        result[f"encoder_attentions.{i}"] = host(attention)
    for name, value in captured.items():
        if name.startswith("decoder_attentions."):
            result[name] = host(value)
    return result


def low_precision_yardstick(cases: list[dict], dtypes: list[str], device: str) -> tuple[dict, dict]:
    """Per dtype: PyTorch's worst error against the fixtures (and where), and its f32 error on this device."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    worst: dict[str, dict] = {}
    for dtype in ["f32"] + [d for d in dtypes if d != "f32"]:
        worst[dtype] = {"error": 0.0, "where": ""}
        for case in cases:
            reference = load_file(str(case["path"]))
            outputs = torch_outputs(
                FIXTURES / "models" / case["model"], reference["pixel_values"], reference["noise"],
                float(case["ratio"]), case["interpolate"], dtype, device,
            )
            for name, value in outputs.items():
                if name in reference and value.shape == reference[name].shape:
                    error = tensor_error(name, value, reference[name])
                    if math.isfinite(error) and error > worst[dtype]["error"]:
                        worst[dtype] = {"error": error, "where": f"{case['name']} {name}"}
    tolerances = {d: LOW_PRECISION_FACTOR * worst[d]["error"] for d in dtypes if d != "f32"}
    tolerances["f32"] = F32_TOLERANCE
    return worst, tolerances


# ----------------------------------------------------------------------------------------------------------------

def check_fixtures(args, cases, tolerances, scratch: Path) -> tuple[list[dict], bool]:
    inputs = {}
    for case in cases:
        reference = load_file(str(case["path"]))
        stem = case["name"].replace("/", "_")
        pixel_values, noise = scratch / f"{stem}.pixels.npy", scratch / f"{stem}.noise.npy"
        np.save(pixel_values, reference["pixel_values"].astype(np.float32))
        np.save(noise, reference["noise"].astype(np.float32))
        inputs[case["name"]] = {"pixel_values": pixel_values, "noise": noise, "ratio": case["ratio"]}

    jobs = [(case, dtype, kernels) for dtype in args.dtypes for kernels in args.kernels for case in cases]

    def run(job):
        case, dtype, kernels = job
        out = scratch / f"{case['name'].replace('/', '_')}.{dtype}.{kernels}.safetensors"
        started = time.perf_counter()
        error = run_dump(args.bin, args.device, FIXTURES / "models" / case["model"], inputs[case["name"]], dtype,
                         kernels, out)
        seconds = time.perf_counter() - started
        row = {"case": case["name"], "dtype": dtype, "kernels": kernels, "seconds": round(seconds, 2)}
        if error:
            return {**row, "worst": math.inf, "worst_tensor": "", "problems": [error], "crashed": True}
        worst, worst_name, problems = compare(
            load_file(str(out)), load_file(str(case["path"])), tolerances.get(dtype), exact_pixels=dtype == "f32"
        )
        out.unlink()
        return {**row, "worst": worst, "worst_tensor": worst_name, "problems": problems}

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(run, jobs))

    ok = True
    print(f"{'dtype':5} {'kernels':7} {'cases':>9} {'tolerance':>10} {'worst error':>12}  worst at")
    for dtype in args.dtypes:
        for kernels in args.kernels:
            group = [r for r in rows if r["dtype"] == dtype and r["kernels"] == kernels]
            passed = sum(1 for r in group if not r["problems"])
            worst_row = max(group, key=lambda r: r["worst"] if not math.isnan(r["worst"]) else math.inf)
            tolerance = tolerances.get(dtype)
            judged = tolerance is not None
            crashed = any(r.get("crashed") for r in group)  # a failed dump fails with or without a tolerance
            ok &= (passed == len(group) or not judged) and not crashed
            verdict = f"{passed}/{len(group)}" if judged else "unjudged"
            tolerance_text = f"{tolerance:.2e}" if judged else "-"
            print(f"{dtype:5} {kernels:7} {verdict:>9} {tolerance_text:>10} {worst_row['worst']:12.3e}  "
                  f"{worst_row['case']} {worst_row['worst_tensor']}")
    failures = [r for r in rows if r["problems"]]
    for r in failures[:40]:
        print(f"  FAIL {r['dtype']} {r['kernels']} {r['case']}: " + "; ".join(r["problems"][:4]))
    if len(failures) > 40:
        print(f"  ... {len(failures) - 40} more failing runs in parity.json")
    return rows, ok


def check_base_model(args, base: Path, tolerances: dict, scratch: Path) -> tuple[list[dict], bool]:
    """Ours against PyTorch on this device on vit-mae-base shapes (seed 0 noise, ratio 0.75)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    config = json.loads((base / "config.json").read_text())
    size, patch = config.get("image_size", 224), config.get("patch_size", 16)
    patches = (size // patch) ** 2
    pixel_values = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1)).numpy()
    torch.manual_seed(0)
    noise = torch.rand(1, patches).numpy()
    np.save(scratch / "base.pixels.npy", pixel_values)
    np.save(scratch / "base.noise.npy", noise)
    inputs = {"pixel_values": scratch / "base.pixels.npy", "noise": scratch / "base.noise.npy", "ratio": "0.75"}
    reference = torch_outputs(base, pixel_values, noise, 0.75, False, "f32", args.device)
    rows, ok = [], True
    print(f"vit-mae-base shapes, against PyTorch f32 on {args.device} (TF32 off): logits / last_hidden_state / "
          "encoder attentions")
    for dtype in args.dtypes:
        low = torch_outputs(base, pixel_values, noise, 0.75, False, dtype, args.device) if dtype != "f32" else None
        for kernels in args.kernels:
            out = scratch / f"base.{dtype}.{kernels}.safetensors"
            error = run_dump(args.bin, args.device, base, inputs, dtype, kernels, out)
            row = {"case": "base", "dtype": dtype, "kernels": kernels}
            if error:
                rows.append({**row, "problems": [error]})
                ok = False
                print(f"  {dtype:5} {kernels:7} FAIL {error}")
                continue
            ours = load_file(str(out))
            names = [n for n in reference if n != "loss" and n in ours]
            errors = {n: tensor_error(n, ours[n], reference[n]) for n in names}
            torch_errors = {n: tensor_error(n, low[n], reference[n]) for n in names if n in low} if low else {}
            tolerance = F32_TOLERANCE if dtype == "f32" else LOW_PRECISION_FACTOR * max(torch_errors.values(), default=0)
            worst = max(errors, key=lambda n: errors[n])
            passed = all(e <= tolerance for e in errors.values())
            ok &= passed
            torch_text = f" (torch {dtype} itself: {max(torch_errors.values()):.2e})" if torch_errors else ""
            print(f"  {dtype:5} {kernels:7} {'ok  ' if passed else 'FAIL'} worst {errors[worst]:.3e} at {worst}, "
                  f"tolerance {tolerance:.2e}{torch_text}")
            rows.append({**row, "errors": errors, "torch_errors": torch_errors, "tolerance": tolerance,
                         "passed": passed})
    return rows, ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the mae-explorer binary")
    ap.add_argument("--out", required=True, type=Path, help="folder for parity.json")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--jobs", type=int, default=8, help="dumps run at once")
    ap.add_argument("--dtypes", default="f32,f16,bf16")
    ap.add_argument("--kernels", default="fused,candle")
    ap.add_argument("--base-model", type=Path, help="a vit-mae-base-shaped model folder to check too")
    args = ap.parse_args()
    args.dtypes = [d for d in args.dtypes.split(",") if d]
    args.kernels = [k for k in args.kernels.split(",") if k]
    args.out.mkdir(parents=True, exist_ok=True)

    cases = fixture_cases()
    print(f"{len(cases)} fixture cases, dtypes {args.dtypes}, kernels {args.kernels}, device {args.device}")
    result: dict = {"cases": len(cases)}
    problem = torch_available(args.device)
    tolerances = {"f32": F32_TOLERANCE}
    if problem is None:
        started = time.perf_counter()
        worst, tolerances = low_precision_yardstick(cases, args.dtypes, args.device)
        result["torch_worst"] = worst
        for dtype, entry in worst.items():
            print(f"torch {dtype} on {args.device} vs the fixtures: worst relative error {entry['error']:.3e} "
                  f"({entry['where']})" + (f" -> tolerance {tolerances[dtype]:.2e}" if dtype != "f32" else ""))
        print(f"(reference runs took {time.perf_counter() - started:.1f} s)")
    else:
        print(f"no PyTorch reference: {problem}; f16/bf16 reported, not judged")
    result["tolerances"] = tolerances

    ok = True
    with tempfile.TemporaryDirectory(prefix="gpu-parity-") as scratch:
        started = time.perf_counter()
        rows, fixtures_ok = check_fixtures(args, cases, tolerances, Path(scratch))
        print(f"({len(rows)} dumps in {time.perf_counter() - started:.1f} s)")
        result["fixture_runs"] = rows
        ok &= fixtures_ok
        if args.base_model and problem is None:
            base_rows, base_ok = check_base_model(args, args.base_model, tolerances, Path(scratch))
            result["base_runs"] = base_rows
            ok &= base_ok
    (args.out / "parity.json").write_text(json.dumps(result, indent=1, default=str))
    print("PARITY " + ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
